"""Converting a LAION crawl (img2dataset shards: parquet + tar of JPEGs) to MDS: our
single-process converter vs the same conversion on Spark (``local[2]``) and on Ray (2 CPUs).

Runs in ``.venv`` (pyspark and ray are there, not in ``.venv-compat``): ``make bench`` runs it
after the peer cases. Every engine converts the same input, one task per img2dataset shard,
through the same ``encode_shard`` (each JPEG decoded once to check it). Two rates: end to end
(what a user waits for, the engine's start included) and warm (from the conversion call,
engine already up). On 2 cores an engine can at best double the single process; at this size
its start-up cost is the story.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks.harness import OURS, CaseSpec, Metric

SPARK = "spark local[2]"
RAY = "ray 2 CPUs"

SPEC = CaseSpec(
    name="convert",
    libraries=[OURS, SPARK, RAY],
    params=[{"shards": 8, "per_shard": 1000}, {"shards": 8, "per_shard": 6000}],
    quick_params=[{"shards": 4, "per_shard": 100}],
    metrics=[
        Metric("samples_per_s", "samples/s (end to end)"),
        Metric("warm_samples_per_s", "samples/s (engine up)"),
    ],
    timeout=600,
)


@contextmanager
def environment(params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    from recipes.laion.fixtures import write_raw

    root = tempfile.mkdtemp(prefix="bench-convert-")
    try:
        raw = write_raw(
            os.path.join(root, "raw"),
            shards=params["shards"],
            per_shard=params["per_shard"],
            failures=params["per_shard"] // 10,
        )
        yield {"raw": raw}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(library: str, params: dict[str, Any]) -> dict[str, float]:
    from recipes.common.convert import WriteOptions

    out = tempfile.mkdtemp(prefix="bench-convert-out-")
    options = WriteOptions(out=os.path.join(out, "mds"), progress=False, force=True)
    began = time.perf_counter()
    try:
        if library == OURS:
            from recipes.laion.convert import convert

            warm = time.perf_counter()
            report = convert(params["raw"], options)
        elif library == SPARK:
            from pyspark.sql import SparkSession

            from recipes.laion.distributed import convert_on_spark

            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            spark = (
                SparkSession.builder.master("local[2]")
                .config("spark.ui.enabled", "false")
                .config("spark.driver.host", "127.0.0.1")
                .config("spark.driver.bindAddress", "127.0.0.1")
                .getOrCreate()
            )
            spark.sparkContext.setLogLevel("ERROR")
            warm = time.perf_counter()
            report = convert_on_spark(spark, params["raw"], options)
            spark.stop()
        elif library == RAY:
            import ray

            from recipes.laion.distributed import convert_on_ray

            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            ray.data.DataContext.get_current().enable_progress_bars = False
            warm = time.perf_counter()
            report = convert_on_ray(params["raw"], options)
            ray.shutdown()
        else:
            raise ValueError(f"unknown library {library!r}")
        done = time.perf_counter()
    finally:
        shutil.rmtree(out, ignore_errors=True)
    samples = report["samples"]
    return {
        "samples_per_s": samples / (done - began),
        "warm_samples_per_s": samples / (done - warm),
    }
