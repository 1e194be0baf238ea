"""Writing MDS shards: samples/s and MB/s, ours vs mosaicml-streaming's MDSWriter.

Two sample shapes: small token samples (a 128-token uint16 array + an int label) and large
ones (100 KB of image bytes + a label); each uncompressed and with zstd + sha1/xxh64 hashes.
Samples are generated before the clock starts; the clock covers the writer's construction,
every ``write`` and ``finish`` (all shard files and the index on disk).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from typing import Any

import numpy as np

from benchmarks.harness import OURS, CaseSpec, Metric

PEER = "mosaicml-streaming"

SPEC = CaseSpec(
    name="write",
    libraries=[OURS, PEER],
    params=[
        {"kind": "tokens", "n": 200_000, "compression": "none"},
        {"kind": "tokens", "n": 200_000, "compression": "zstd"},
        {"kind": "image", "n": 3_000, "compression": "none"},
        {"kind": "image", "n": 3_000, "compression": "zstd"},
    ],
    quick_params=[
        {"kind": "tokens", "n": 20_000, "compression": "zstd"},
        {"kind": "image", "n": 300, "compression": "none"},
    ],
    metrics=[Metric("samples_per_s", "samples/s"), Metric("mb_per_s", "MB/s")],
)


def _samples(kind: str, n: int) -> tuple[dict[str, str], list[dict[str, Any]], int]:
    rng = np.random.default_rng(0)
    if kind == "tokens":
        tokens = rng.integers(0, 60_000, (n, 128), dtype=np.uint16)
        samples = [{"tokens": tokens[i], "label": i} for i in range(n)]
        return {"tokens": "ndarray:uint16:128", "label": "int"}, samples, n * (256 + 8)
    if kind == "image":
        # Half-compressible bytes, like encoded images with headers and flat regions.
        blobs = [rng.bytes(50_000) + bytes(50_000) for _ in range(64)]
        samples = [{"image": blobs[i % 64], "label": i} for i in range(n)]
        return {"image": "bytes", "label": "int"}, samples, n * (100_000 + 8)
    raise ValueError(f"unknown kind {kind!r}")


def run(library: str, params: dict[str, Any]) -> dict[str, float]:
    if library == OURS:
        from streaming_lightning import MDSWriter
    elif library == PEER:
        from streaming import MDSWriter  # type: ignore[no-redef]
    else:
        raise ValueError(f"unknown library {library!r}")
    columns, samples, payload = _samples(params["kind"], params["n"])
    compression = None if params["compression"] == "none" else params["compression"]
    hashes = ["sha1", "xxh64"] if compression else None
    root = tempfile.mkdtemp(prefix="bench-write-")
    try:
        start = time.perf_counter()
        with MDSWriter(
            out=f"{root}/ds", columns=columns, compression=compression, hashes=hashes
        ) as writer:
            for sample in samples:
                writer.write(sample)
        elapsed = time.perf_counter() - start
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {"samples_per_s": len(samples) / elapsed, "mb_per_s": payload / elapsed / 1e6}
