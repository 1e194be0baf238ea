"""Downloading shards from an S3 server on 127.0.0.1 (moto): MB/s, ours vs mosaicml-streaming.

The harness starts the server and uploads N shard-sized objects once per parameter set; each
measurement then downloads all of them into an empty directory through the library's own
download path, with the same number of concurrent threads for both libraries (``threads``,
which users of ours set as ``download_dataset(workers=...)``). Ours: ``download_file`` (lock,
temp file, fsync, size check, rename). Theirs: the downloader its ``Stream`` uses.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from benchmarks.harness import OURS, CaseSpec, Metric
from benchmarks.s3server import BUCKET, moto_server, use_server

PEER = "mosaicml-streaming"

SPEC = CaseSpec(
    name="download",
    libraries=[OURS, PEER],
    params=[
        {"shards": 48, "shard_mb": 4, "threads": 8},
        {"shards": 400, "shard_mb": 0.0625, "threads": 8},
        {"shards": 48, "shard_mb": 4, "threads": 1},
    ],
    quick_params=[{"shards": 8, "shard_mb": 1, "threads": 4}],
    metrics=[Metric("mb_per_s", "MB/s"), Metric("files_per_s", "files/s")],
)


@contextmanager
def environment(params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Start moto on loopback and upload the shards; yield the endpoint."""
    with moto_server() as (endpoint, client):
        payload = os.urandom(int(params["shard_mb"] * (1 << 20)))
        for i in range(params["shards"]):
            client.put_object(Bucket=BUCKET, Key=f"ds/shard.{i:05}.mds", Body=payload)
        yield {"endpoint": endpoint}


def run(library: str, params: dict[str, Any]) -> dict[str, float]:
    use_server(params["endpoint"])
    urls = [f"s3://bench/ds/shard.{i:05}.mds" for i in range(params["shards"])]
    size = int(params["shard_mb"] * (1 << 20))
    root = tempfile.mkdtemp(prefix="bench-download-")
    if library == OURS:
        from streaming_lightning.storage import download_file

        def fetch(i: int) -> None:
            download_file(urls[i], f"{root}/shard.{i:05}.mds", expected_bytes=size)
    elif library == PEER:
        from streaming.base.storage.download import CloudDownloader

        downloader = CloudDownloader.get("s3://bench/ds")

        def fetch(i: int) -> None:
            downloader.download(urls[i], f"{root}/shard.{i:05}.mds", 60)
    else:
        raise ValueError(f"unknown library {library!r}")
    try:
        fetch(0)  # client creation and connection set-up, outside the clock for both
        os.unlink(f"{root}/shard.00000.mds")
        start = time.perf_counter()
        with ThreadPoolExecutor(params["threads"]) as pool:
            list(pool.map(fetch, range(params["shards"])))
        elapsed = time.perf_counter() - start
        for i in range(params["shards"]):
            assert os.path.getsize(f"{root}/shard.{i:05}.mds") == size
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "mb_per_s": params["shards"] * size / elapsed / 1e6,
        "files_per_s": params["shards"] / elapsed,
    }
