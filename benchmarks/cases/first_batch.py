"""Time to the first batch (256 samples, one process), warm and cold.

Warm: the data is on local disk. Cold: it is on an S3 server on 127.0.0.1 (moto) and the
cache directory is empty, so the first shard must be downloaded. The clock covers building the
dataset object (index download included) and iterating until 256 samples are in hand; library
imports happen before it. webdataset streams remote tars over HTTP through ``curl``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks import data
from benchmarks.harness import CaseSpec, Metric
from benchmarks.libraries import READERS, get
from benchmarks.measure import Clock, touch
from benchmarks.s3server import BUCKET, moto_server, upload_dir, use_server

SPEC = CaseSpec(
    name="first_batch",
    libraries=READERS,
    params=[
        {"kind": "tokens", "n": 200_000, "source": "local", "shuffle": True},
        {"kind": "tokens", "n": 200_000, "source": "s3", "shuffle": True},
        {"kind": "image", "n": 2_000, "source": "local", "shuffle": True},
        {"kind": "image", "n": 2_000, "source": "s3", "shuffle": True},
    ],
    quick_params=[{"kind": "tokens", "n": 20_000, "source": "s3", "shuffle": True}],
    metrics=[Metric("seconds", "s", higher_is_better=False)],
)

BATCH = 256


@contextmanager
def environment(params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    dirs = {fmt: data.dataset_dir(fmt, params["kind"], params["n"]) for fmt in data.WRITERS}
    if params["source"] != "s3":
        yield {}
        return
    with moto_server() as (endpoint, client):
        for fmt, path in dirs.items():
            upload_dir(client, path, fmt)
        yield {"endpoint": endpoint}


def remote_url(fmt: str, endpoint: str) -> str:
    if fmt == "webdataset":
        return f"{endpoint}/{BUCKET}/{fmt}"
    return f"s3://{BUCKET}/{fmt}"


def run(library: str, params: dict[str, Any]) -> dict[str, float]:
    lib = get(library)
    lib.preload()
    path = data.dataset_dir(lib.format, params["kind"], params["n"])
    cache = tempfile.mkdtemp(prefix="bench-first-batch-")
    remote = None
    if params["source"] == "s3":
        use_server(params["endpoint"])
        remote = remote_url(lib.format, params["endpoint"])
    try:
        with Clock() as clock:
            dataset = lib.open(
                path, shuffle=params["shuffle"], batch_size=BATCH, remote=remote, cache_dir=cache
            )
            iterator = lib.iterate(dataset)
            batch = [next(iterator) for _ in range(BATCH)]
            for sample in batch:
                touch(sample)  # the batch's bytes read, not just promised (see measure.touch)
        assert len(batch) == BATCH
        del iterator
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return {"seconds": clock.seconds}
