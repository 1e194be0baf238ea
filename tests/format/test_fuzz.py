"""Hostile inputs, at scale (issue #11, guarantee 6): hypothesis mutates valid datasets written
by our own writers — ``index.json`` structure and text, shard bytes, the bytes inside
compressed shards — and every reader reads every sample of the result.

Every outcome must be a valid sample or one of the documented exceptions below, whose message
names the file (a path inside the dataset directory); never another exception, a hang (a
watchdog interrupts any example after ``HANG_S`` seconds), an allocation sized by a forged
field (tracemalloc's peak per example stays under ``MEMORY_LIMIT``, and the address space may
grow by ``ADDRESS_SPACE_HEADROOM`` at most, so untraced allocations in C fail loudly too), or
an open of a file outside the dataset directory (an audit hook watches every ``open``; a
sentinel shard sits right beside the dataset, where ``../`` and absolute basenames point).

The documented exceptions — everything reading untrusted input can raise; all derive from
:class:`~streaming_lightning.errors.StreamingError`:

- ``IndexFormatError`` (a ``CorruptDataError``): index.json is not UTF-8 JSON, lacks or
  mistypes a field, has impossible sizes or counts, or nests too deep;
- ``UnsafePathError`` (a ``CorruptDataError``): a file name in index.json is absolute, has
  ``..``/``.``/empty components, a NUL or backslash, or is longer than a path can be;
- ``CorruptDataError``: shard bytes are not what index.json says (size, sample count, offset
  table, embedded config, sample and column lengths, a directory where a file should be);
- ``HashMismatchError`` (a ``CorruptDataError``): a digest differs (with ``validate_hash``);
- ``HashError``: ``validate_hash`` names an algorithm index.json records no digest for;
- ``CompressionError``: a compressed shard does not decompress, or its header claims (or it
  produces) more bytes than index.json records — refused before allocating them;
- ``EncodingError``: an unknown encoding in index.json, or a stored value corrupt for its
  encoding (not UTF-8, not JSON, an array header that does not match its bytes ...);
- ``UnsafeTypeError``: a forged encoding of ``pkl`` without ``allow_unsafe_types=True``;
- ``MissingFileError``: a shard file index.json names is not there (and there is no remote);
- ``ConfigError``: ``StreamingDataset`` over a dataset whose index.json lists no samples.

The default run is ``QUICK`` examples per fuzz test, seeded and database-free so CI sees the
same inputs every time; the ``slow`` run draws ``SLOW`` other examples per test. Inputs the
fuzzer once found to escape are pinned as plain tests at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import struct
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from PIL.Image import Image

from streaming_lightning import CSVWriter, JSONWriter, LocalDataset, MDSWriter, StreamingDataset
from streaming_lightning.errors import (
    CompressionError,
    ConfigError,
    CorruptDataError,
    EncodingError,
    HashError,
    IndexFormatError,
    MissingFileError,
    StreamingError,
    UnsafePathError,
    UnsafeTypeError,
)
from streaming_lightning.format.compression import compress, decompress
from streaming_lightning.format.encodings import mds_encode
from streaming_lightning.format.hashing import hash_bytes
from streaming_lightning.format.mds.reader import MDSReader

QUICK = 200
SLOW = 800
HANG_S = 20.0
MEMORY_LIMIT = 64 << 20
ADDRESS_SPACE_HEADROOM = 1 << 30

# ---------------------------------------------------------------------------------- datasets


def _mds_samples(count: int) -> Iterator[dict[str, Any]]:
    rng = np.random.default_rng(0)
    for i in range(count):
        shape = tuple(int(d) for d in rng.integers(1, 4, size=1 + i % 3))
        yield {
            "arr": rng.integers(0, 100, size=shape).astype(["uint8", "int32", "float64"][i % 3]),
            "b": bytes(rng.integers(0, 256, size=i % 7, dtype=np.uint8)),
            "i": i - 5,
            "j": {"k": i, "l": [i, "x" * (i % 3)]},
            "s": "é" * (i % 4),
            "u": np.uint16(i * 1000),
            "v": np.full(3, i, np.float32),
        }


MDS_COLUMNS = {
    "arr": "ndarray",
    "b": "bytes",
    "i": "int",
    "j": "json",
    "s": "str",
    "u": "uint16",
    "v": "ndarray:float32:3",
}
TEXT_COLUMNS = {"f": "float", "i": "int", "s": "str"}


def _text_samples(count: int) -> Iterator[dict[str, Any]]:
    for i in range(count):
        yield {"f": i / 3, "i": i * 7 - 20, "s": "word" * (i % 3)}


def _build(kind: str, out: str) -> None:
    if kind in ("mds", "mds_zstd"):
        zstd = kind == "mds_zstd"
        with MDSWriter(
            out=out,
            columns=MDS_COLUMNS,
            compression="zstd" if zstd else None,
            hashes=["xxh64"] if zstd else ["sha1", "xxh64"],
            size_limit=700,
        ) as writer:
            for sample in _mds_samples(14):
                writer.write(sample)
    elif kind == "mds_fixed":
        with MDSWriter(
            out=out,
            columns={"i": "int", "v": "ndarray:uint8:4", "x": "float32"},
            hashes=["sha1"],
            size_limit=200,
        ) as writer:
            for i in range(20):
                writer.write({"i": i, "v": np.arange(i, i + 4, dtype=np.uint8), "x": i / 2})
    elif kind == "mds_large":
        # One sample past LARGE_READ: the pread paths of the bytes-and-label decoder.
        with MDSWriter(
            out=out, columns={"img": "bytes", "label": "int"}, hashes=["sha1"], size_limit=1 << 20
        ) as writer:
            for i in range(4):
                writer.write({"img": bytes([i]) * (20_000 if i == 2 else 10 * i), "label": i})
    elif kind == "mds_br":
        with MDSWriter(
            out=out,
            columns={"j": "json", "s": "str"},
            compression="br:1",
            hashes=["sha1"],
            size_limit=300,
        ) as writer:
            for sample in _mds_samples(8):
                writer.write({"j": sample["j"], "s": sample["s"]})
    elif kind in ("csv", "csv_snappy"):
        with CSVWriter(
            out=out,
            columns=TEXT_COLUMNS,
            compression="snappy" if kind == "csv_snappy" else None,
            hashes=["sha1"],
            size_limit=150,
        ) as writer:
            for sample in _text_samples(12):
                writer.write(sample)
    elif kind == "jsonl_zstd":
        with JSONWriter(
            out=out, columns=TEXT_COLUMNS, compression="zstd", hashes=["sha1"], size_limit=200
        ) as writer:
            for sample in _text_samples(12):
                writer.write(sample)
    else:
        raise AssertionError(kind)
    os.makedirs(os.path.join(out, "sub"))  # a directory a forged basename can name


KINDS = ("mds", "mds_zstd", "mds_fixed", "mds_large", "mds_br", "csv", "csv_snappy", "jsonl_zstd")
#: Compression of the compressed kinds' files, by file extension.
CODECS = {".zstd": "zstd", ".br": "br", ".snappy": "snappy"}


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("fuzz-bases")
    out = {}
    for kind in KINDS:
        _build(kind, str(root / kind))
        out[kind] = str(root / kind)
    return out


# ---------------------------------------------------------------------------------- guards

SENTINEL = "sentinel.mds"


class _Audit:
    """Records every open of a path inside ``outer`` but outside ``allowed`` (the sentinel
    sits in ``outer``, beside the dataset directory ``allowed``)."""

    def __init__(self) -> None:
        self.outer: str | None = None
        self.allowed: str | None = None
        self.violations: list[str] = []

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        if event != "open" or self.outer is None or not args:
            return
        path = args[0]
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, str):
            return  # a file descriptor
        full = os.path.abspath(path)
        if full.startswith(self.outer + os.sep) and not (
            full == self.allowed or full.startswith(str(self.allowed) + os.sep)
        ):
            self.violations.append(full)


_AUDIT = _Audit()
sys.addaudithook(_AUDIT.hook)  # audit hooks cannot be removed; it is inert outside _sandbox


class Hang(BaseException):
    """Raised by the watchdog (a BaseException, so no ``except Exception`` swallows it)."""


@contextlib.contextmanager
def _watchdog(seconds: float) -> Iterator[None]:
    """Interrupt the block after ``seconds`` (wall clock), keeping any outer timer (e.g.
    pytest-timeout's) running across it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise Hang(f"reading a mutated dataset took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    outer_left, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    start = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_left:
            signal.setitimer(
                signal.ITIMER_REAL, max(0.001, outer_left - (time.monotonic() - start))
            )


@contextlib.contextmanager
def _address_space_cap(headroom: int) -> Iterator[None]:
    """Lower the soft RLIMIT_AS to what the process maps now plus ``headroom`` for the block:
    an allocation sized by a forged field then fails (MemoryError, which the test reports)
    even where tracemalloc cannot see it (Pillow's, codecs' own buffers) and even where
    overcommit would have let it succeed untouched."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        with open("/proc/self/statm") as file:
            mapped = int(file.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        yield  # not Linux: tracemalloc's check alone
        return
    cap = mapped + headroom
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    if soft != resource.RLIM_INFINITY and soft <= cap:
        yield
        return
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@contextlib.contextmanager
def _sandbox(base: str) -> Iterator[Path]:
    """A fresh copy of ``base`` in a directory of its own, with a sentinel shard beside it;
    checks no open escaped the copy and no allocation exceeded ``MEMORY_LIMIT``."""
    outer = tempfile.mkdtemp(prefix="fuzz-")
    try:
        dataset = os.path.join(outer, "ds")
        shutil.copytree(base, dataset)
        shard = sorted(p for p in os.listdir(dataset) if p.startswith("shard."))[0]
        shutil.copyfile(os.path.join(dataset, shard), os.path.join(outer, SENTINEL))
        was_tracing = tracemalloc.is_tracing()
        if not was_tracing:
            tracemalloc.start()
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        _AUDIT.outer, _AUDIT.allowed, _AUDIT.violations = outer, dataset, []
        try:
            with _watchdog(HANG_S), _address_space_cap(ADDRESS_SPACE_HEADROOM):
                yield Path(dataset)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            _AUDIT.outer = _AUDIT.allowed = None
            if not was_tracing:
                tracemalloc.stop()
        assert not _AUDIT.violations, f"opened files outside the dataset: {_AUDIT.violations}"
        assert peak - before < MEMORY_LIMIT, f"allocated {peak - before} bytes at once"
    finally:
        shutil.rmtree(outer, ignore_errors=True)


# ---------------------------------------------------------------------------------- reading

_VALUE_TYPES = (str, int, float, bytes, bool, list, dict, Decimal, np.ndarray, np.generic, Image)


def _check_sample(sample: Any, limit: int) -> None:
    """A sample is a dict of column name to an ordinary value no larger than the dataset."""
    assert isinstance(sample, dict), type(sample)
    for name, value in sample.items():
        assert isinstance(name, str), name
        assert value is None or isinstance(value, _VALUE_TYPES), (name, type(value))
        if isinstance(value, np.ndarray):
            assert value.nbytes <= limit, (name, value.shape)


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


#: The documented exceptions (see the module docstring; the subclasses of CorruptDataError
#: are covered by it).
DOCUMENTED = (
    CorruptDataError,
    HashError,
    CompressionError,
    EncodingError,
    UnsafeTypeError,
    MissingFileError,
    ConfigError,
)
#: Set by the test of unmutated datasets: there, no read may fail at all.
_STRICT = False


def _attempt(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run one read; a documented exception is a fine outcome (None), anything else fails."""
    try:
        return fn(*args, **kwargs)
    except StreamingError as err:
        if _STRICT or not isinstance(err, DOCUMENTED):
            raise
        assert _AUDIT.allowed is not None and _AUDIT.allowed in str(err), (
            f"{type(err).__name__} does not name the file: {err}"
        )
        return None


def _read_local(path: Path, validate_hash: str | None) -> None:
    limit = _dir_bytes(path)
    ds = _attempt(LocalDataset, str(path), validate_hash=validate_hash)
    if ds is None:
        return
    try:
        for i in range(len(ds)):
            sample = _attempt(ds.__getitem__, i)
            if sample is not None:
                _check_sample(sample, limit)
        for sample in _attempt(list, ds) or []:
            _check_sample(sample, limit)
        for shard in ds.shards:
            _attempt(_read_shard, shard, limit)
    finally:
        ds.close()


def _read_shard(shard: Any, limit: int) -> None:
    everything = np.arange(shard.samples)
    shard.will_need(everything)
    for sample in shard.get_samples(everything[::-1]):
        _check_sample(sample, limit)
    if not isinstance(shard, MDSReader):
        return
    decode = shard.sample_decoder()
    for i in range(shard.samples):
        _check_sample(_attempt(decode, i) or {}, limit)
    if shard.batchable:
        for value in shard.decode_batch(shard.get_rows(everything)).values():
            assert isinstance(value, np.ndarray) and value.nbytes <= limit
    table_bytes = shard.offset_table_bytes
    if table_bytes:
        with open(shard.path_of(shard.files["data"][0].basename), "rb") as file:
            table = file.read(table_bytes)
        spans = shard.sample_spans(table, everything, "remote shard")
        assert spans.shape == (shard.samples, 2)


def _read_streaming(path: Path, validate_hash: str | None) -> None:
    limit = _dir_bytes(path)
    ds = _attempt(
        StreamingDataset,
        local=str(path),
        batch_size=4,
        validate_hash=validate_hash,
        shuffle=True,
    )
    if ds is None:
        return
    for sample in _attempt(list, ds) or []:
        _check_sample(sample, limit)
    for i in range(0, ds.num_samples, 3):
        sample = _attempt(ds.__getitem__, i)
        if sample is not None:
            _check_sample(sample, limit)
    if ds.batchable:
        for batch in _attempt(list, ds.iter_batches()) or []:
            assert isinstance(batch, dict)
    if ds._cache is not None:
        ds._cache.close()


def _read_everything(path: Path, validate_hash: str | None) -> None:
    # The streaming dataset first: it decompresses shards itself; LocalDataset then finds
    # them ready (and decompresses whatever the first pass could not).
    _read_streaming(path, validate_hash)
    _read_local(path, validate_hash)


# ---------------------------------------------------------------------------------- mutations

SENTINEL_ABS = "@SENTINEL_ABS@"  # replaced by the sentinel's absolute path when applied
HUGE_INTS = [
    -(2**63),
    -(2**31),
    -1,
    0,
    1,
    3,
    4,
    255,
    2**16,
    2**31 - 1,
    2**31,
    2**32 - 1,
    2**32,
    2**40,
    2**63 - 1,
    2**64,
    10**30,
]
ESCAPES = [
    "../" + SENTINEL,
    "../../" + SENTINEL,
    SENTINEL_ABS,
    "sub/../../" + SENTINEL,
    "shard.00000.mds/../../" + SENTINEL,
    "./shard.00000.mds",
    "~/" + SENTINEL,
    "..\\" + SENTINEL,
    "sub",
    "sub/",
    "sub//shard.00000.mds",
    "shard.00000.mds\0",
    "index.json",
    "x" * 300,
    "a/" * 3000 + "x",
    "shard.99999.mds",
]
ENCODINGS = [
    "pkl",
    "float128",
    "ndarray:uint8:1000000000,1000000000",
    "ndarray:float32:3",
    "ndarray:int64",
    "ndarray",
    "int",
    "uint16",
    "str",
    "bytes",
    "json",
    "jpeg",
    "pil",
    "list[png]",
    "str_decimal",
    "int:5",
]
NAMES = ["zstd", "zstd:99", "zstd:3", "gz", "br", "snappy", "lz4", "sha1", "md5", "xxh64", "nohash"]
NAMES += ["mds", "csv", "tsv", "xsv", "json", "parquet", ",", "\n", ""]


def _deep(depth: int) -> str:
    """A marker that ``IndexMutation.apply`` turns into ``depth`` nested JSON lists."""
    return f"@DEEP:{depth}@"


hostile_values = st.one_of(
    st.sampled_from(HUGE_INTS),
    st.sampled_from(ESCAPES),
    st.sampled_from(ENCODINGS),
    st.sampled_from(NAMES),
    st.sampled_from([None, True, False, 1.5, float("nan"), float("inf"), [], {}, [None], {"": 1}]),
    st.integers(),
    st.text(max_size=12),
    st.just("y" * 20_000),
    st.builds(_deep, st.sampled_from([50, 5_000])),
    st.lists(st.one_of(st.none(), st.integers(-3, 2**33), st.text(max_size=4)), max_size=4),
)


def _json_paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every (nested) key path of a JSON value, the root's children first."""
    paths: list[tuple[Any, ...]] = []
    children = obj.items() if isinstance(obj, dict) else enumerate(obj)
    if isinstance(obj, (dict, list)):
        for key, value in children:
            paths.append((*prefix, key))
            paths.extend(_json_paths(value, (*prefix, key)))
    return paths


def _resolve(value: Any, sentinel: str) -> Any:
    if isinstance(value, str):
        return value.replace(SENTINEL_ABS, sentinel)
    if isinstance(value, list):
        return [_resolve(v, sentinel) for v in value]
    return value


@dataclass(frozen=True)
class IndexMutation:
    op: str
    pick: int = 0
    value: Any = None
    other: int = 0
    #: Only paths this deep are picked: 3 is a field of a shard entry, 4 one inside it
    #: ("field": 0 deletes the field, else it is replaced).
    depth: int = 99

    def apply(self, text: bytes, sentinel: str) -> bytes:
        obj = json.loads(text)
        value = _resolve(self.value, sentinel)
        shards = obj["shards"]
        if self.op in ("replace", "delete", "tweak"):
            paths = [p for p in _json_paths(obj) if len(p) <= self.depth] or [("version",)]
            path = paths[self.pick % len(paths)]
            parent = obj
            for key in path[:-1]:
                parent = parent[key]
            key = path[-1]
            if self.op == "delete":
                if isinstance(parent, dict):
                    del parent[key]
                else:
                    parent.pop(key)
            elif self.op == "tweak":
                old = parent[key]
                parent[key] = (old + value) if isinstance(old, int) else value
            else:
                parent[key] = value
        elif self.op == "field":
            # A known field of one shard entry, or of all of them (pick == 0).
            path = FIELD_PATHS[self.other % len(FIELD_PATHS)]
            targets = shards if self.pick == 0 else shards[self.pick % len(shards) :][:1]
            for shard in targets:
                parent = shard
                for key in path[:-1]:
                    parent = parent.get(key) if isinstance(parent, dict) else None
                if isinstance(parent, dict):
                    if self.depth == 0:
                        parent.pop(path[-1], None)
                    else:
                        parent[path[-1]] = value
                elif isinstance(parent, list) and isinstance(path[-1], int) and parent:
                    parent[path[-1] % len(parent)] = value
        elif self.op == "dup_key":
            # A duplicate key: json.loads keeps the last (the forged value), others the first.
            shard = shards[self.pick % len(shards)]
            key = sorted(shard)[self.other % len(shard)]
            shard["~dup~"] = 0
            text_out = json.dumps(obj, sort_keys=True, allow_nan=True)
            return _deepen(text_out.replace('"~dup~": 0', json.dumps({key: value})[1:-1]))
        elif self.op == "dup_shard":
            shards.insert(self.other % (len(shards) + 1), shards[self.pick % len(shards)])
        elif self.op == "drop_shard":
            shards.pop(self.pick % len(shards))
        elif self.op == "swap_files":
            a, b = shards[self.pick % len(shards)], shards[self.other % len(shards)]
            a["raw_data"], b["raw_data"] = b["raw_data"], a["raw_data"]
        else:
            raise AssertionError(self.op)
        return _deepen(json.dumps(obj, sort_keys=True, allow_nan=True))


FIELD_PATHS: list[tuple[Any, ...]] = [
    ("samples",),
    ("samples",),
    ("format",),
    ("version",),
    ("compression",),
    ("hashes",),
    ("size_limit",),
    ("column_names",),
    ("column_names", 0),
    ("column_encodings",),
    ("column_encodings", 0),
    ("column_encodings", 1),
    ("column_sizes",),
    ("column_sizes", 0),
    ("columns",),
    ("columns", "s"),
    ("newline",),
    ("separator",),
]
for _role in ("raw_data", "zip_data", "raw_meta", "zip_meta"):
    FIELD_PATHS += [(_role,), (_role, "basename"), (_role, "basename"), (_role, "bytes")]
    FIELD_PATHS += [(_role, "hashes"), (_role, "hashes", "sha1")]


def _deepen(text: str) -> bytes:
    for depth in (50, 5_000):
        text = text.replace(f'"@DEEP:{depth}@"', "[" * depth + "]" * depth)
    return text.encode()


@dataclass(frozen=True)
class IndexTextMutation:
    op: str
    position: float = 0.0
    data: bytes = b""

    def apply(self, text: bytes, sentinel: str) -> bytes:
        at = int(self.position * len(text))
        if self.op == "truncate":
            return text[:at]
        if self.op == "overwrite":
            return text[:at] + self.data + text[at + len(self.data) :]
        if self.op == "insert":
            return text[:at] + self.data + text[at:]
        if self.op == "replace":
            return self.data
        raise AssertionError(self.op)


index_mutations = st.one_of(
    st.builds(
        IndexMutation,
        op=st.sampled_from(["replace", "replace", "delete", "dup_key"]),
        pick=st.integers(0, 10_000),
        value=hostile_values,
        other=st.integers(0, 100),
        depth=st.sampled_from([3, 4, 99]),
    ),
    st.builds(
        IndexMutation,
        op=st.sampled_from(["tweak"]),
        pick=st.integers(0, 10_000),
        value=st.sampled_from([-(2**32), -5, -4, -1, 1, 4, 5, 2**31, 2**32]),
        depth=st.sampled_from([3, 4, 99]),
    ),
    st.builds(
        IndexMutation,
        op=st.just("field"),
        pick=st.sampled_from([0, 0, 1, 2, 3]),
        value=hostile_values,
        other=st.integers(0, len(FIELD_PATHS) - 1),
        depth=st.sampled_from([0, 1, 1, 1]),  # 0: delete the field, else replace it
    ),
    st.builds(
        IndexMutation,
        op=st.sampled_from(["dup_shard", "drop_shard", "swap_files"]),
        pick=st.integers(0, 100),
        other=st.integers(0, 100),
    ),
    st.builds(
        IndexTextMutation,
        op=st.sampled_from(["truncate", "overwrite", "insert"]),
        position=st.floats(0, 1),
        data=st.one_of(
            st.binary(min_size=1, max_size=8),
            st.sampled_from([b"\xff\xfe", b"\x00", b"\xc3", b"}", b"]", b'"', b"NaN", b"1e999"]),
        ),
    ),
    st.builds(
        IndexTextMutation,
        op=st.just("replace"),
        data=st.one_of(
            st.binary(max_size=64),
            st.sampled_from(
                [
                    b"",
                    b"null",
                    b"[]",
                    b'{"shards": [], "version": 2}',
                    b'{"shards": {}, "version": 2}',
                    b'{"shards": [null], "version": 2}',
                    b"[" * 100_000 + b"]" * 100_000,
                    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
                    b"\xef\xbb\xbf{}",
                    '{"shards": [], "version": 2, "é": "\udc80"}'.encode("utf-8", "surrogatepass"),
                ]
            ),
        ),
    ),
)


@dataclass(frozen=True)
class ByteMutation:
    """A change to the bytes of one file of the dataset (not index.json).

    ``inner``: applied to the decompressed content of a compressed file, which is then
    compressed again (so the mutation reaches the shard parser instead of the codec).
    ``fix_index``: index.json is updated to the file's new size and digests (so the mutation
    gets past those checks too).
    """

    file: int
    op: str
    position: float = 0.0
    data: bytes = b""
    value: int = 0
    sample: int = 0
    column: int = 0
    inner: bool = False
    fix_index: bool = False

    def mutate(self, content: bytes) -> bytes:
        size = len(content)
        at = min(int(self.position * size), max(size - 1, 0))
        if self.op == "flip":
            if not size:
                return content
            return content[:at] + bytes([content[at] ^ (1 << (self.value % 8))]) + content[at + 1 :]
        if self.op == "overwrite":
            return content[:at] + self.data + content[at + len(self.data) :]
        if self.op == "truncate":
            return content[: int(self.position * size)]
        if self.op == "extend":
            return content + self.data
        if self.op in ("count", "offset", "varsize"):
            return self._forge_u32(content)
        raise AssertionError(self.op)

    def _forge_u32(self, content: bytes) -> bytes:
        """Overwrite a uint32 the reader trusts: the sample count, an offset table entry, or
        the length field of a variable-size column of one sample."""
        if len(content) < 8:
            return content
        count = struct.unpack_from("<I", content)[0]
        if self.op == "count":
            at = 0
        elif self.op == "offset":
            at = 4 + 4 * (self.sample % (count + 1)) if 8 + 4 * count <= len(content) else 0
        else:
            table_ok = count and 8 + 4 * count <= len(content)
            start = (
                struct.unpack_from("<I", content, 4 + 4 * (self.sample % count))[0]
                if table_ok
                else 0
            )
            at = start + 4 * (self.column % 2)
        if at + 4 > len(content):
            return content
        value = self.value % (1 << 32)
        return content[:at] + struct.pack("<I", value) + content[at + 4 :]


u32_values = st.one_of(
    st.sampled_from([0, 1, 2, 3, 4, 7, 8, 255, 2**16, 2**24, 2**31 - 1, 2**31, 2**32 - 1]),
    st.integers(0, 2**32 - 1),
)

byte_mutations = st.one_of(
    st.builds(
        ByteMutation,
        file=st.integers(0, 100),
        op=st.sampled_from(["flip", "overwrite", "truncate", "extend"]),
        position=st.floats(0, 1),
        data=st.binary(min_size=1, max_size=16),
        value=st.integers(0, 7),
        inner=st.booleans(),
        fix_index=st.booleans(),
    ),
    st.builds(
        ByteMutation,
        file=st.integers(0, 100),
        op=st.sampled_from(["count", "offset", "varsize", "varsize"]),
        value=u32_values,
        sample=st.integers(0, 100),
        column=st.integers(0, 3),
        inner=st.booleans(),
        fix_index=st.booleans(),
    ),
)


def _apply_byte_mutation(dataset: Path, mutation: ByteMutation) -> None:
    files = sorted(p for p in os.listdir(dataset) if p.startswith("shard."))
    name = files[mutation.file % len(files)]
    path = dataset / name
    stored = path.read_bytes()
    raw: bytes | None = None
    codec = CODECS.get(os.path.splitext(name)[1])
    if codec and mutation.inner:
        try:
            raw = mutation.mutate(decompress(codec, stored, max_size=1 << 20))
        except StreamingError:  # an earlier mutation broke the frame: mutate it as it is
            raw = None
    if raw is not None:
        new = compress(codec, raw)
    else:
        new = mutation.mutate(stored)
    path.write_bytes(new)
    if not mutation.fix_index:
        return
    index_path = dataset / "index.json"
    obj = json.loads(index_path.read_bytes())
    for shard in obj["shards"]:
        for role in ("data", "meta"):
            raw_info, zip_info = shard.get(f"raw_{role}"), shard.get(f"zip_{role}")
            if zip_info and zip_info["basename"] == name:
                _fix(zip_info, new)
                if raw is not None:
                    _fix(raw_info, raw)
            elif raw_info and raw_info["basename"] == name:
                _fix(raw_info, new)
    index_path.write_text(json.dumps(obj, sort_keys=True))


def _fix(info: dict[str, Any], content: bytes) -> None:
    info["bytes"] = len(content)
    info["hashes"] = {algo: hash_bytes(algo, content) for algo in info.get("hashes", {})}


# ------------------------------------------------------------------------- forged values

#: Every variable-size encoding whose decoder parses its bytes, one column each.
FORGED_COLUMNS = {
    "a": "ndarray",
    "b": "ndarray:uint16",
    "c": "json",
    "d": "str",
    "e": "str_int",
    "f": "str_float",
    "g": "str_decimal",
    "h": "pil",
    "i": "png",
    "j": "jpeg",
    "k": "list[png]",
    "l": "list[pil]",
    "m": "jpeg_array",
}


def _image_file(fmt: str) -> bytes:
    from io import BytesIO

    from PIL import Image

    out = BytesIO()
    Image.new("RGB", (3, 2), (200, 10, 30)).save(out, format=fmt)
    return out.getvalue()


def _forge_png(width: int, height: int) -> bytes:
    """A PNG whose header (with a valid CRC) claims ``width`` x ``height`` pixels."""
    import zlib

    data = bytearray(_image_file("PNG"))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def _forge_jpeg(width: int, height: int) -> bytes:
    data = bytearray(_image_file("JPEG"))
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


U32 = [0, 1, 2, 3, 255, 65_535, 2**16, 2**24, 2**31, 2**32 - 1]
dims = st.sampled_from([*U32, 2**40, 2**63, 2**64 - 1])


def _ndarray(dtype: int | None, ndim: int, code: int, shape: list[int], payload: bytes) -> bytes:
    width = 1 << code
    head = b"" if dtype is None else bytes([dtype])
    body = b"".join(
        (d % (1 << (8 * width))).to_bytes(width, "little") for d in shape[:ndim] + [1] * ndim
    )
    return head + bytes([(ndim << 2 | code) % 256]) + body[: ndim * width] + payload


def _pil(width: int, height: int, mode: bytes, mode_size: int | None, pixels: bytes) -> bytes:
    size = len(mode) if mode_size is None else mode_size
    return struct.pack("<III", width, height, size) + mode + pixels


def _items(placeholder: bool, count: int | None, items: list[bytes], sizes: list[int]) -> bytes:
    listed = sizes or [len(item) for item in items]
    n = len(listed) if count is None else count
    head = struct.pack("<I", n % (1 << 32)) + b"".join(struct.pack("<I", s) for s in listed)
    return (b"\0\0\0\0" if placeholder else b"") + head + b"".join(items)


image_items = st.one_of(
    st.sampled_from([_image_file("PNG"), _image_file("JPEG"), b"", b"\x89PNG"]),
    st.builds(_forge_png, dims.filter(lambda d: d < 2**32), dims.filter(lambda d: d < 2**32)),
    st.builds(_forge_jpeg, st.sampled_from([0, 1, 65_535]), st.sampled_from([0, 1, 65_535])),
    st.binary(max_size=24),
)
pil_values = st.builds(
    _pil,
    st.sampled_from(U32),
    st.sampled_from(U32),
    st.sampled_from([b"L", b"RGB", b"1", b"I;16", b"F", b"P", b"CMYK", b"??", b"", b"\xff"]),
    st.one_of(st.none(), st.sampled_from(U32)),
    st.binary(max_size=48),
)
list_values = st.builds(
    _items,
    st.booleans(),
    st.one_of(st.none(), st.sampled_from(U32)),
    st.lists(image_items, max_size=3),
    st.lists(st.sampled_from(U32), max_size=3),
)
nd_values = st.builds(
    _ndarray,
    st.one_of(st.none(), st.sampled_from([0, 8, 9, 16, 18, 34, 64, 66, 67, 255])),
    st.integers(0, 63),
    st.integers(0, 3),
    st.lists(dims, max_size=4),
    st.binary(max_size=32),
)
TEXTS = [b"9" * 5_000, b" 12 ", b"1_0", b"-0", b"nan", b"1e999", b"1e999999999", b"sNaN", b"0x10"]
TEXTS += [b"\xff\xfe", b"\xc3", b"", b"null", b"\x00", b"\xed\xa0\x80"]
JSON_TEXTS = [b"[" * 5_000 + b"]" * 5_000, b'{"a":' * 3_000 + b"1" + b"}" * 3_000, b"9" * 5_000]
JSON_TEXTS += [b'"\\ud800"', b"1e999", b"NaN", b"[1,", b'{"a": 1} x', b"\xef\xbb\xbf1"]
texts = st.one_of(st.sampled_from(TEXTS), st.binary(max_size=16))
FORGERIES = {
    "json": st.one_of(st.sampled_from(JSON_TEXTS), texts),
    "ndarray": st.one_of(nd_values, st.binary(max_size=16)),
    "ndarray:uint16": st.one_of(nd_values, st.binary(max_size=16)),
    "pil": st.one_of(pil_values, st.binary(max_size=16)),
    "png": image_items,
    "jpeg": image_items,
    "list[png]": st.one_of(list_values, st.binary(max_size=16)),
    "list[pil]": st.builds(
        _items, st.just(True), st.none(), st.lists(pil_values, max_size=2), st.just([])
    ),
    "jpeg_array": st.one_of(list_values, st.binary(max_size=16)),
}


def _valid_values() -> dict[str, bytes]:
    from PIL import Image

    from streaming_lightning.format.encodings import mds_encode

    image = Image.new("RGB", (3, 2), (1, 2, 3))
    values = {
        "ndarray": np.arange(6, dtype=np.int32).reshape(2, 3),
        "ndarray:uint16": np.arange(4, dtype=np.uint16),
        "json": {"a": [1, 2]},
        "str": "text",
        "str_int": 12,
        "str_float": 0.5,
        "str_decimal": Decimal("1.25"),
        "pil": image,
        "png": image,
        "jpeg": image,
        "list[png]": [image, image],
        "list[pil]": [image],
        "jpeg_array": [_image_file("JPEG")],
    }
    return {name: mds_encode(enc, values[enc]) for name, enc in FORGED_COLUMNS.items()}


def _forge_one(name: str) -> Any:
    """One column's value forged, the others valid: every decoder gets to run."""
    strategy = FORGERIES.get(FORGED_COLUMNS[name], texts)
    return strategy.map(lambda value: {**_valid_values(), name: value})


forged_samples = st.sampled_from(sorted(FORGED_COLUMNS)).flatmap(_forge_one)


# ---------------------------------------------------------------------------------- tests


def _settings(examples: int) -> Any:
    return settings(
        max_examples=examples,
        database=None,
        deadline=None,  # hangs are the watchdog's: a slow CI machine must not flake
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        print_blob=True,
    )


#: What applying a mutation to an already mutated index.json may raise (it is then skipped).
HARNESS_ERRORS = (
    ValueError,
    KeyError,
    TypeError,
    IndexError,
    AttributeError,
    ZeroDivisionError,
    RecursionError,
)
BUDGETS = [
    pytest.param(QUICK, id="quick"),
    pytest.param(SLOW, id="slow", marks=pytest.mark.slow),
]
validate_hashes = st.sampled_from([None, None, "sha1", "xxh64"])


@pytest.mark.parametrize("examples", BUDGETS)
def test_mutated_index_json(bases: dict[str, str], examples: int) -> None:
    @seed(examples)
    @_settings(examples)
    @given(
        kind=st.sampled_from(KINDS),
        mutations=st.lists(index_mutations, min_size=1, max_size=2),
        validate_hash=validate_hashes,
    )
    def run(kind: str, mutations: list[Any], validate_hash: str | None) -> None:
        with _sandbox(bases[kind]) as dataset:
            index = dataset / "index.json"
            sentinel = str(dataset.parent / SENTINEL)
            text = index.read_bytes()
            for mutation in mutations:
                try:
                    text = mutation.apply(text, sentinel)
                except HARNESS_ERRORS:
                    break  # an earlier mutation left nothing this one can act on
            index.write_bytes(text)
            _read_everything(dataset, validate_hash)

    run()


@pytest.mark.parametrize("examples", BUDGETS)
def test_mutated_shard_bytes(bases: dict[str, str], examples: int) -> None:
    @seed(examples)
    @_settings(examples)
    @given(
        kind=st.sampled_from(KINDS),
        mutations=st.lists(byte_mutations, min_size=1, max_size=3),
        validate_hash=validate_hashes,
    )
    def run(kind: str, mutations: list[ByteMutation], validate_hash: str | None) -> None:
        with _sandbox(bases[kind]) as dataset:
            for mutation in mutations:
                _apply_byte_mutation(dataset, mutation)
            _read_everything(dataset, validate_hash)

    run()


def test_unmutated_datasets_read_back(bases: dict[str, str], monkeypatch: Any) -> None:
    """The harness itself: every base dataset reads without error through every path."""
    monkeypatch.setattr(sys.modules[__name__], "_STRICT", True)
    for kind in KINDS:
        with _sandbox(bases[kind]) as dataset:
            ds = LocalDataset(str(dataset))
            assert len(ds) and all(isinstance(s, dict) for s in ds)
            ds.close()
            _read_everything(dataset, "xxh64" if kind == "mds_zstd" else "sha1")


@pytest.mark.parametrize("examples", BUDGETS)
def test_forged_column_values(tmp_path: Path, examples: int) -> None:
    """Values written as raw bytes (the writer stores ``bytes`` as given): every decoder
    meets forged headers — array shapes, image sizes, list counts — and hostile text."""
    base = tmp_path / "base"

    @seed(examples)
    @_settings(examples)
    @given(samples=st.lists(forged_samples, min_size=1, max_size=3))
    def run(samples: list[dict[str, bytes]]) -> None:
        shutil.rmtree(base, ignore_errors=True)
        with MDSWriter(out=str(base), columns=FORGED_COLUMNS) as writer:
            for sample in samples:
                writer.write(sample)
        with _sandbox(str(base)) as dataset:
            _read_everything(dataset, None)

    run()


# ------------------------------------------------------------------------- regressions
# Inputs the fuzzer found that once escaped as another exception, hung or allocated by a
# forged size; pinned here so they stay fixed whatever the draw.


def _edit_index(dataset: Path, edit: Any) -> None:
    obj = json.loads((dataset / "index.json").read_bytes())
    edit(obj["shards"][0])
    (dataset / "index.json").write_text(json.dumps(obj))


def _read_all(dataset: Path) -> None:
    """Iterate a StreamingDataset (which plans the epoch before opening any shard), then
    read every sample through LocalDataset."""
    list(StreamingDataset(local=str(dataset)))
    ds = LocalDataset(str(dataset))
    try:
        for i in range(len(ds)):
            ds[i]
    finally:
        ds.close()


def _set(key: str, value: Any) -> Any:
    return lambda shard: shard.update({key: value})


def _set_in(key: str, inner: Any, value: Any) -> Any:
    return lambda shard: shard[key].__setitem__(inner, value)


@pytest.mark.parametrize(
    ("kind", "edit", "error", "match"),
    [
        # A forged sample count sized epoch plans (MemoryError, or 20 GB and a hang).
        ("mds", _set("samples", 2**40), IndexFormatError, "samples need an offset table"),
        ("mds", _set("samples", 2**31), IndexFormatError, "samples need an offset table"),
        ("csv", _set("samples", 10**6), IndexFormatError, "samples need an offset table"),
        ("mds", _set_in("raw_data", "bytes", 2**32), IndexFormatError, "more than a shard"),
        # Split formats' meta file entries were not validated (KeyError, TypeError).
        ("csv", lambda shard: shard.pop("raw_meta"), IndexFormatError, "raw_meta"),
        ("csv", _set("raw_meta", 5), IndexFormatError, "raw_meta"),
        ("jsonl_zstd", _set("zip_meta", None), IndexFormatError, "zip_meta"),
        # Column lists holding lists (TypeError: unhashable, or str.join of a list).
        ("csv", _set("column_names", [[None]] * 3), IndexFormatError, "column_names"),
        ("jsonl_zstd", _set("columns", {"s": []}), IndexFormatError, "columns"),
        ("mds", _set_in("column_encodings", 0, [None]), EncodingError, "must be a string"),
        # A fixed shape whose size wrapped around in int64 (np.prod), or cannot fit a shard.
        (
            "mds_fixed",
            lambda shard: shard.update(
                column_encodings=["int", "ndarray:uint8:65536,65536", "float32"],
                column_sizes=[8, 2**32, 4],
            ),
            EncodingError,
            "cannot fit in a shard",
        ),
        # File names: a directory (IsADirectoryError), too long (OSError), unencodable
        # (UnicodeEncodeError), absent (FileNotFoundError, not one of ours).
        ("mds", _set_in("raw_data", "basename", "sub"), CorruptDataError, "is a directory"),
        ("mds", _set_in("raw_data", "basename", "x" * 300), UnsafePathError, "longer"),
        ("mds", _set_in("raw_data", "basename", "\ud800.mds"), UnsafePathError, "encoded"),
        ("mds", _set_in("raw_data", "basename", "gone.mds"), MissingFileError, "gone.mds"),
        ("mds_zstd", _set_in("zip_data", "basename", "sub"), CorruptDataError, "directory"),
    ],
)
def test_forged_index_fields(
    bases: dict[str, str], kind: str, edit: Any, error: type, match: str
) -> None:
    with _sandbox(bases[kind]) as dataset:
        _edit_index(dataset, edit)
        with pytest.raises(error, match=match) as info:
            _read_all(dataset)
        assert str(dataset) in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        b"[" * 100_000 + b"]" * 100_000,  # RecursionError
        b'{"shards": [], "version": 2, "n": 1' + b"0" * 5_000 + b"}",  # ValueError: 4300 digits
    ],
)
def test_hostile_index_text(bases: dict[str, str], text: bytes) -> None:
    with _sandbox(bases["mds"]) as dataset:
        (dataset / "index.json").write_bytes(text)
        with pytest.raises(IndexFormatError, match="not valid JSON") as info:
            _read_all(dataset)
        assert str(dataset) in str(info.value)


def test_forged_zstd_frame_size_is_refused_before_allocating(bases: dict[str, str]) -> None:
    """A frame header claiming 1 TiB made the one-shot decompressor allocate it."""
    with _sandbox(bases["mds_zstd"]) as dataset:
        packed = dataset / "shard.00000.mds.zstd"
        frame = packed.read_bytes()
        fhd = frame[4]  # frame header descriptor: where the content size field is, how long
        single = (fhd >> 5) & 1
        fcs_bytes = (single, 2, 4, 8)[fhd >> 6]
        body = frame[5 + (1 - single) + (0, 1, 2, 4)[fhd & 3] + fcs_bytes :]
        forged = b"\x28\xb5\x2f\xfd\xe0" + struct.pack("<Q", 2**40) + body
        packed.write_bytes(forged)
        _edit_index(dataset, lambda shard: shard["zip_data"].update(bytes=len(forged)))
        with pytest.raises(CompressionError, match="claims 1099511627776 bytes") as info:
            _read_all(dataset)
        assert "shard.00000.mds.zstd" in str(info.value)


@pytest.mark.parametrize("codec", ["zstd", "gz", "bz2", "br", "snappy"])
def test_decompression_is_bounded_by_the_recorded_size(codec: str) -> None:
    data = compress(codec, b"\0" * 100_000)
    assert decompress(codec, data, max_size=100_000) == b"\0" * 100_000
    with pytest.raises(CompressionError, match=r"shard\.zz"):
        decompress(codec, data, source="shard.zz", max_size=99_999)


def _value_dataset(out: Path, column: str, encoding: str, value: bytes) -> Path:
    with MDSWriter(out=str(out), columns={column: encoding, "n": "int"}) as writer:
        writer.write({column: mds_encode(encoding, _VALID[encoding]), "n": 0})
        writer.write({column: value, "n": 1})
    return out


_VALID: dict[str, Any] = {"json": [1], "png": None, "pil": None, "str": "ok"}


@pytest.mark.parametrize(
    ("encoding", "value", "match"),
    [
        ("json", b"[" * 5_000 + b"]" * 5_000, "not valid JSON"),  # RecursionError
        ("json", b"1" * 5_000, "not valid JSON"),  # ValueError: past 4300 digits
        ("png", _forge_png(100_000, 100_000), "corrupt"),  # DecompressionBombError
        ("pil", _pil(2**31, 1, b"L", None, b"x"), "corrupt"),  # OverflowError
        ("pil", _pil(65_535, 65_535, b"RGBA", None, b"x"), "corrupt"),  # a 16 GiB image
        ("str", b"\xff", "not UTF-8"),  # (was already an EncodingError, without the file)
    ],
)
def test_forged_values_name_file_sample_and_column(
    tmp_path: Path, encoding: str, value: bytes, match: str
) -> None:
    from PIL import Image as PILImage

    _VALID["png"] = _VALID["pil"] = PILImage.new("L", (2, 2))
    base = _value_dataset(tmp_path / "base", "v", encoding, value)
    with _sandbox(str(base)) as dataset:
        ds = LocalDataset(str(dataset))
        assert isinstance(ds[0], dict)
        with pytest.raises(EncodingError, match=match) as info:
            ds[1]
        ds.close()
        assert f"{dataset / 'shard.00000.mds'} sample 1: column 'v'" in str(info.value)


def test_deep_json_line_names_file_and_sample(tmp_path: Path) -> None:
    out = tmp_path / "j"
    with JSONWriter(out=str(out), columns={"s": "str"}) as writer:
        writer.write({"s": "x" * 2_100})
    data = out / "shard.00000.json"
    row = data.read_bytes()
    deep = b"[" * 1_050 + b"]" * 1_050
    data.write_bytes(deep + b" " * (len(row) - len(deep) - 1) + b"\n")
    with _sandbox(str(out)) as dataset:
        with pytest.raises(CorruptDataError, match="sample 0: a sample is not valid JSON"):
            LocalDataset(str(dataset))[0]


def test_deep_embedded_config_names_the_shard(bases: dict[str, str]) -> None:
    """The config JSON in an MDS shard's header nested past the parser's limit
    (RecursionError)."""
    with _sandbox(bases["mds_fixed"]) as dataset:
        config = b"[" * 5_000 + b"]" * 5_000
        sample = bytes(16)  # int, ndarray:uint8:4, float32
        start = 4 + 8 + len(config)
        shard = struct.pack("<III", 1, start, start + len(sample)) + config + sample
        (dataset / "shard.00000.mds").write_bytes(shard)
        _edit_index(dataset, lambda entry: entry.update(samples=1))
        _edit_index(dataset, _set_in("raw_data", "bytes", len(shard)))
        with pytest.raises(CorruptDataError, match="embedded shard config") as info:
            _read_all(dataset)
        assert "shard.00000.mds" in str(info.value)
