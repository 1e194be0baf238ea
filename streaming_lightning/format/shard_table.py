"""ShardTable: a validated index's shards as a few flat arrays in one file.

Why it exists: ``index.json`` at 100,000 shards is ~27 MB of JSON; parsing and validating it
takes seconds and leaves ~3 KB of Python objects per shard in every process that holds it —
each rank, and each DataLoader worker (a forked worker touches them through reference counts,
a spawned one unpickles its own copy). A table is written once and memory-mapped by everyone
else: its pages live once in the page cache, shared by every process of the node, so a process's
private memory no longer grows with the shard count. A shard's reader is built on demand from
its spec, stored as compact JSON in one blob.

File layout (little-endian): ``MAGIC | uint64 header length | header JSON | arrays``, each array
64-byte aligned at the offset the header gives. The file is ours (written atomically into a
directory only its user can write), but it is still read as untrusted: every shape, offset and
range is checked on load, and a bad table is rebuilt rather than trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mmap
import os
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streaming_lightning.errors import CorruptDataError
from streaming_lightning.format.readers import reader_class
from streaming_lightning.fsutil import safe_join

MAGIC = b"SLSHTBL1"
#: Part of every table's name: a new table layout never reads an old one.
_LAYOUT = b"shard-table-v1\0"
_ALIGN = 64
#: Index fields that differ from shard to shard; the rest describe the columns (a "template").
_PER_SHARD_PREFIXES = ("raw_", "zip_")
_PER_SHARD_FIELDS = frozenset({"samples", "hashes", "size_limit", "compression"})
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def index_digest(path: str) -> str:
    """Names the table of the index at ``path``. Read in 1 MiB pieces: a 27 MB read would
    also raise glibc's mmap threshold for the rest of the process, so later large arrays
    would come from the heap and stay resident in DataLoader workers after being freed."""
    digest = hashlib.sha256(_LAYOUT)
    with open(path, "rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()[:32]


class ShardTable:
    """The shards of one index: per-shard counts and sizes as arrays, specs in a JSON blob, and
    every file name the shards own (sorted, to find a listed file's shard in one search).

    Arrays (``n`` shards, ``m`` files):
    - ``samples``, ``raw_bytes``, ``zip_bytes``, ``stored_bytes``: int64 (n,) — samples, bytes
      once decompressed, bytes of the compressed files (0 if none), bytes to download;
    - ``spec_offsets`` int64 (n+1,) into ``specs`` uint8: shard i's index entry as JSON;
    - ``file_names`` S (m,), sorted; ``file_shards`` int64 (m,); ``file_downloaded`` bool (m,):
      whether that file is fetched from the remote (False: a raw file made by decompressing).
    """

    ARRAYS = (
        "samples",
        "raw_bytes",
        "zip_bytes",
        "stored_bytes",
        "spec_offsets",
        "specs",
        "file_names",
        "file_shards",
        "file_downloaded",
    )

    def __init__(
        self, arrays: dict[str, np.ndarray], meta: dict[str, Any], path: str | None = None
    ) -> None:
        self.arrays = arrays
        self.meta = meta
        self.path = path
        self.samples: NDArray[np.int64] = arrays["samples"]
        self.raw_bytes: NDArray[np.int64] = arrays["raw_bytes"]
        self.zip_bytes: NDArray[np.int64] = arrays["zip_bytes"]
        self.stored_bytes: NDArray[np.int64] = arrays["stored_bytes"]
        self.file_names: np.ndarray = arrays["file_names"]
        self.file_shards: NDArray[np.int64] = arrays["file_shards"]
        self.file_downloaded: NDArray[np.bool_] = arrays["file_downloaded"]
        self._offsets: NDArray[np.int64] = arrays["spec_offsets"]
        self._specs: NDArray[np.uint8] = arrays["specs"]
        self.index_digest: str | None = None
        #: The index.json this table describes, where known: a table file removed while a
        #: job runs (superseded, or expired from a shared directory) is rebuilt from it.
        self.index_path: str | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        """A mapped table pickles as its path (spawned workers map the same pages); one built
        in memory pickles its arrays."""
        if self.path is not None:
            return (_reopen, (self.path, self.index_digest, self.index_path))
        return (ShardTable, (self.arrays, self.meta))

    # ------------------------------------------------------------------ facts

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def directories(self) -> list[str]:
        """Subdirectories (relative, "" for the root) that hold the shards' files."""
        return list(self.meta["directories"])

    @property
    def template_shards(self) -> list[int]:
        """The first shard of each distinct column description (usually just shard 0)."""
        return list(self.meta["template_shards"])

    def spec(self, shard: int) -> dict[str, Any]:
        """Shard ``shard``'s index entry (validated when the table was built)."""
        begin, end = int(self._offsets[shard]), int(self._offsets[shard + 1])
        try:
            spec: dict[str, Any] = json.loads(self._specs[begin:end].tobytes())
        except ValueError as err:
            raise CorruptDataError(f"{self.path}: shard {shard}'s entry is corrupt: {err}") from err
        if not isinstance(spec, dict):
            raise CorruptDataError(f"{self.path}: shard {shard}'s entry is not an object.")
        return spec

    def footprint(self, keep_zip: bool) -> NDArray[np.int64]:
        """Bytes each shard occupies in a cache once ready: raw, plus the zip if it is kept."""
        return self.raw_bytes + self.zip_bytes if keep_zip else self.raw_bytes.copy()

    def find_files(self, names: Sequence[str]) -> NDArray[np.int64]:
        """Position in ``file_names`` of each of ``names`` (relative paths), -1 where a name is
        not one of the shards' files. One vectorised search, however many shards."""
        if not len(names) or not len(self.file_names):
            return np.full(len(names), -1, np.int64)
        width = self.file_names.dtype.itemsize
        encoded = [name.encode("utf-8", "surrogateescape") for name in names]
        wanted = np.array([e if len(e) <= width else b"" for e in encoded], dtype=f"S{width}")
        pos = np.searchsorted(self.file_names, wanted).astype(np.int64)
        pos[pos >= len(self.file_names)] = 0
        hit = (self.file_names[pos] == wanted) & np.array([len(e) <= width for e in encoded])
        hit &= np.array([len(e) > 0 for e in encoded])
        return np.where(hit, pos, -1)

    # ------------------------------------------------------------------ building

    @classmethod
    def build(cls, specs: list[dict[str, Any]], *, source: str = "index.json") -> ShardTable:
        """The table of validated index entries (see :func:`~.index.parse_index`)."""
        n = len(specs)
        samples = np.empty(n, np.int64)
        raw_bytes = np.zeros(n, np.int64)
        zip_bytes = np.zeros(n, np.int64)
        stored_bytes = np.zeros(n, np.int64)
        blobs: list[bytes] = []
        names: list[bytes] = []
        owners: list[int] = []
        downloaded: list[bool] = []
        directories: set[str] = set()
        templates: dict[str, int] = {}
        for i, spec in enumerate(specs):
            samples[i] = spec["samples"]
            for role in reader_class(spec["format"]).roles:
                raw, zipped = spec[f"raw_{role}"], spec.get(f"zip_{role}")
                raw_bytes[i] += raw["bytes"]
                names.append(raw["basename"].encode("utf-8", "surrogateescape"))
                owners.append(i)
                downloaded.append(zipped is None)
                directories.add(os.path.dirname(raw["basename"]))
                if zipped is not None:
                    zip_bytes[i] += zipped["bytes"]
                    stored_bytes[i] += zipped["bytes"]
                    names.append(zipped["basename"].encode("utf-8", "surrogateescape"))
                    owners.append(i)
                    downloaded.append(True)
                    directories.add(os.path.dirname(zipped["basename"]))
                else:
                    stored_bytes[i] += raw["bytes"]
            # repr, not json.dumps: a few times faster, and equal specs still share a key.
            template = repr(
                [
                    item
                    for item in spec.items()
                    if item[0] not in _PER_SHARD_FIELDS
                    and not item[0].startswith(_PER_SHARD_PREFIXES)
                ]
            )
            templates.setdefault(template, i)
            blobs.append(_COMPACT.encode(spec).encode())
        lengths = np.fromiter((len(b) for b in blobs), np.int64, n)
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        width = max((len(name) for name in names), default=1)
        file_names = np.array(names, dtype=f"S{width}")
        order = np.argsort(file_names, kind="stable")
        file_names = file_names[order]
        if len(file_names) > 1 and np.any(file_names[1:] == file_names[:-1]):
            duplicate = file_names[1:][file_names[1:] == file_names[:-1]][0].decode()
            raise CorruptDataError(f"{source}: two shards name the same file {duplicate!r}.")
        arrays: dict[str, np.ndarray] = {
            "samples": samples,
            "raw_bytes": raw_bytes,
            "zip_bytes": zip_bytes,
            "stored_bytes": stored_bytes,
            "spec_offsets": offsets,
            "specs": np.frombuffer(b"".join(blobs), np.uint8),
            "file_names": file_names,
            "file_shards": np.array(owners, np.int64)[order],
            "file_downloaded": np.array(downloaded, np.bool_)[order],
        }
        meta = {
            "directories": sorted(directories),
            "template_shards": sorted(templates.values()),
        }
        return cls(arrays, meta)

    # ------------------------------------------------------------------ file

    def write(self, file: Any, *, index_digest: str, index_path: str | None = None) -> None:
        """Serialise to an open binary file (the caller makes it appear atomically)."""
        layout: dict[str, Any] = {}
        position = 0
        for name in self.ARRAYS:
            array = np.ascontiguousarray(self.arrays[name])
            position = -(-position // _ALIGN) * _ALIGN
            layout[name] = {"dtype": array.dtype.str, "shape": list(array.shape), "at": position}
            position += array.nbytes
        header = json.dumps(
            {
                "meta": self.meta,
                "arrays": layout,
                "index_digest": index_digest,
                "index_path": index_path,
                "bytes": position,
            }
        ).encode()
        start = -(-(len(MAGIC) + 8 + len(header)) // _ALIGN) * _ALIGN
        file.write(MAGIC + struct.pack("<Q", len(header)) + header)
        file.write(b"\0" * (start - len(MAGIC) - 8 - len(header)))
        written = 0
        for name in self.ARRAYS:
            array = np.ascontiguousarray(self.arrays[name])
            file.write(b"\0" * (layout[name]["at"] - written))
            file.write(array.tobytes())
            written = layout[name]["at"] + array.nbytes

    @classmethod
    def load(cls, path: str, *, index_digest: str | None = None) -> ShardTable:
        """Map the table at ``path``; CorruptDataError (naming it) for anything inconsistent,
        including a table built from another index than ``index_digest``."""
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size < len(MAGIC) + 8:
                raise CorruptDataError(f"{path}: too short to be a shard table.")
            buffer = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            return cls._parse(buffer, size, path, index_digest)
        except (CorruptDataError, ValueError, KeyError, TypeError, AttributeError) as err:
            with contextlib.suppress(BufferError):  # views made before the error still live
                buffer.close()
            if isinstance(err, CorruptDataError):
                raise
            raise CorruptDataError(f"{path}: not a valid shard table ({err!r:.200}).") from None

    @classmethod
    def _parse(cls, buffer: mmap.mmap, size: int, path: str, digest: str | None) -> ShardTable:
        if buffer[: len(MAGIC)] != MAGIC:
            raise CorruptDataError(f"{path}: not a shard table (bad magic).")
        (header_len,) = struct.unpack("<Q", buffer[len(MAGIC) : len(MAGIC) + 8])
        if header_len > size:
            raise CorruptDataError(f"{path}: header length {header_len} exceeds the file.")
        header = json.loads(buffer[len(MAGIC) + 8 : len(MAGIC) + 8 + header_len])
        if not isinstance(header, dict) or not isinstance(header.get("arrays"), dict):
            raise CorruptDataError(f"{path}: the header is not a table header.")
        if digest is not None and header.get("index_digest") != digest:
            raise CorruptDataError(f"{path}: built from another index.json.")
        start = -(-(len(MAGIC) + 8 + header_len) // _ALIGN) * _ALIGN
        if start + int(header["bytes"]) != size:
            raise CorruptDataError(f"{path}: {size} bytes, header says {start + header['bytes']}.")
        arrays: dict[str, np.ndarray] = {}
        for name in cls.ARRAYS:
            item = header["arrays"][name]
            dtype = np.dtype(item["dtype"])
            if dtype.hasobject:
                raise CorruptDataError(f"{path}: array {name} has an object dtype.")
            count = int(np.prod(item["shape"], dtype=np.int64))
            at = start + int(item["at"])
            if count < 0 or at < start or at + count * dtype.itemsize > size:
                raise CorruptDataError(f"{path}: array {name} lies outside the file.")
            arrays[name] = np.frombuffer(buffer, dtype, count, at).reshape(item["shape"])
        table = cls(arrays, header["meta"], path)
        table._check(path)
        table.index_digest = header.get("index_digest")
        if isinstance(header.get("index_path"), str):
            table.index_path = header["index_path"]
        return table

    def _check(self, path: str) -> None:
        n, m = len(self.samples), len(self.file_names)
        offsets = self._offsets
        if any(len(self.arrays[a]) != n for a in ("raw_bytes", "zip_bytes", "stored_bytes")):
            raise CorruptDataError(f"{path}: per-shard arrays differ in length.")
        if len(offsets) != n + 1 or len(self.file_shards) != m or len(self.file_downloaded) != m:
            raise CorruptDataError(f"{path}: array lengths are inconsistent.")
        if (
            offsets[0] != 0
            or offsets[-1] != len(self._specs)
            or np.any(offsets[1:] < offsets[:-1])
            or np.any(self.samples < 0)
            or (m and (self.file_shards.min() < 0 or self.file_shards.max() >= n))
            or (m > 1 and np.any(self.file_names[1:] <= self.file_names[:-1]))
        ):
            raise CorruptDataError(f"{path}: offsets, counts or names are out of range.")
        templates = self.meta.get("template_shards")
        directories = self.meta.get("directories")
        if (
            not isinstance(templates, list)
            or not all(isinstance(t, int) and 0 <= t < n for t in templates)
            or (n and not templates)
            or not isinstance(directories, list)
            or not all(isinstance(d, str) for d in directories)
        ):
            raise CorruptDataError(f"{path}: bad table metadata.")
        for directory in directories:
            if directory:  # listed and swept by the cache: must stay inside the dataset
                safe_join("/", directory, source=path)


def _reopen(path: str, digest: str | None, index_path: str | None) -> ShardTable:
    """Unpickling a mapped table (a spawned worker): map the same file; if it is gone or no
    longer this index's (another process swept or replaced it meanwhile), rebuild the table in
    memory from the index it was made from."""
    try:
        return ShardTable.load(path, index_digest=digest)
    except (FileNotFoundError, CorruptDataError):
        if index_path is None:
            raise
    from streaming_lightning.format.index import load_index

    if digest is not None and index_digest(index_path) != digest:
        raise CorruptDataError(
            f"{path} is gone and {index_path} changed since this job opened it: restart the "
            "job (its shard list would no longer match)."
        )
    table = ShardTable.build(load_index(index_path), source=index_path)
    table.index_digest, table.index_path = digest, index_path
    return table
