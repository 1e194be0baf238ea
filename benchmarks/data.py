"""The benchmark datasets: generated once, written in every library's own format, reused.

Two sample kinds, as the issue defines them: ``tokens`` (a 128-token uint16 array + an int
label, like a pre-tokenised text corpus) and ``image`` (100 KB of bytes + an int label, like
encoded images). Every library reads the same samples; only the container differs (MDS for ours
and mosaicml-streaming, which share the format byte for byte; litdata's chunks; webdataset's
tars). Datasets are cached under ``$SL_BENCH_DATA`` (default: a per-user temp dir) so the
many cases and repetitions do not rewrite gigabytes; each is built in a temp dir and renamed
into place, so an interrupted build is never mistaken for a finished one.
"""

from __future__ import annotations

import getpass
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

TOKENS = 128
IMAGE_BYTES = 100_000
SHARD_BYTES = 1 << 26  # 64 MiB, mosaicml-streaming's default size_limit, for every format


def columns(kind: str) -> dict[str, str]:
    if kind == "tokens":
        return {"tokens": f"ndarray:uint16:{TOKENS}", "label": "int"}
    if kind == "image":
        return {"image": "bytes", "label": "int"}
    raise ValueError(f"unknown sample kind {kind!r}")


def samples(kind: str, n: int) -> Iterator[dict[str, Any]]:
    """The same ``n`` samples every time (seeded), generated lazily to keep memory flat."""
    rng = np.random.default_rng(0)
    if kind == "tokens":
        block = 65_536
        for start in range(0, n, block):
            tokens = rng.integers(0, 60_000, (min(block, n - start), TOKENS), dtype=np.uint16)
            for i, row in enumerate(tokens):
                yield {"tokens": row, "label": start + i}
    elif kind == "image":
        # Half-compressible bytes, like encoded images with headers and flat regions.
        blobs = [rng.bytes(IMAGE_BYTES // 2) + bytes(IMAGE_BYTES // 2) for _ in range(64)]
        for i in range(n):
            yield {"image": blobs[i % 64], "label": i}
    else:
        raise ValueError(f"unknown sample kind {kind!r}")


def payload_bytes(kind: str, n: int) -> int:
    return n * ((2 * TOKENS if kind == "tokens" else IMAGE_BYTES) + 8)


def _root() -> str:
    default = os.path.join(tempfile.gettempdir(), f"sl-bench-data-{getpass.getuser()}")
    return os.environ.get("SL_BENCH_DATA", default)


def _write_mds(kind: str, n: int, out: str) -> None:
    from streaming_lightning import MDSWriter

    with MDSWriter(out=out, columns=columns(kind), size_limit=SHARD_BYTES) as writer:
        for sample in samples(kind, n):
            writer.write(sample)


def _write_litdata(kind: str, n: int, out: str) -> None:
    from litdata.streaming.writer import BinaryWriter

    writer = BinaryWriter(out, chunk_bytes=SHARD_BYTES)
    for i, sample in enumerate(samples(kind, n)):
        writer.add_item(i, sample)
    writer.done()
    writer.merge()


def _write_webdataset(kind: str, n: int, out: str) -> None:
    import webdataset as wds

    os.makedirs(out)
    body = "tokens.npy" if kind == "tokens" else "image.bin"
    with wds.ShardWriter(os.path.join(out, "shard-%06d.tar"), maxsize=SHARD_BYTES) as sink:
        for sample in samples(kind, n):
            value = sample["tokens"] if kind == "tokens" else sample["image"]
            sink.write({"__key__": f"{sample['label']:09d}", body: value, "cls": sample["label"]})


WRITERS: dict[str, Callable[[str, int, str], None]] = {
    "mds": _write_mds,
    "litdata": _write_litdata,
    "webdataset": _write_webdataset,
}


def dataset_dir(fmt: str, kind: str, n: int) -> str:
    """The directory holding ``n`` samples of ``kind`` in format ``fmt``, built if missing."""
    path = os.path.join(_root(), f"{fmt}-{kind}-{n}")
    if os.path.isdir(path):
        return path
    os.makedirs(_root(), exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{fmt}-{kind}-{n}-", dir=_root())
    try:
        WRITERS[fmt](kind, n, os.path.join(staging, "ds"))
        os.rename(os.path.join(staging, "ds"), path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def shard_files(fmt: str, path: str) -> list[str]:
    """The data files of a dataset, in order (for the raw-read limit and for uploads)."""
    suffix = {"mds": ".mds", "litdata": ".bin", "webdataset": ".tar"}[fmt]
    return sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(suffix))
