"""LAION on Spark and on Ray: the recipe's img2dataset fixture (tar and files shards, failed
downloads, a similarity filter) converted by each engine holds exactly the samples the
single-machine converter writes, and streams back from the S3 server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from recipes.common.convert import WriteOptions
from recipes.laion.convert import convert
from recipes.laion.distributed import convert_on_ray, convert_on_spark
from recipes.laion.fixtures import write_raw
from streaming_lightning.dataset import StreamingDataset
from tests.fixtures.s3_server import S3Server

MIN_SIMILARITY = 0.30  # the fixture draws similarities in [0.25, 0.40]


def samples(location: str, cache: Path) -> list[tuple[Any, ...]]:
    ds = StreamingDataset(remote=location, local=str(cache))
    rows = [ds[i] for i in range(ds.num_samples)]
    return sorted(
        (r["key"], r["jpg"], r["caption"], r["url"], repr(r["similarity"]), r["width"], r["height"])
        for r in rows
    )


@pytest.fixture(scope="module")
def crawl(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[tuple[Any, ...]]]:
    """Four shards (two tar, two files) and what the single-machine converter makes of them."""
    root = tmp_path_factory.mktemp("crawl")
    raw = str(root / "raw")
    write_raw(raw, shards=2, per_shard=12, mode="tar", seed=1)
    files = str(root / "files")
    write_raw(files, shards=2, per_shard=12, mode="files", seed=2)
    for name in ("00000", "00001"):  # the files shards become 00002, 00003 beside the tars
        new = f"{int(name) + 2:05d}"
        for suffix in ("", ".parquet", "_stats.json"):
            (Path(files) / f"{name}{suffix}").rename(Path(raw) / f"{new}{suffix}")
    options = WriteOptions(out=str(root / "single"), size_limit="20kb", progress=False)
    report = convert(raw, options, min_similarity=MIN_SIMILARITY)
    assert report["samples"] > 10 and report["below_min_similarity"] > 0
    return raw, samples(str(root / "single" / "train"), root / "single-cache")


def test_spark_writes_the_single_machine_samples(
    spark: Any, crawl: tuple[str, list[tuple[Any, ...]]], tmp_path: Path
) -> None:
    raw, expected = crawl
    options = WriteOptions(out=str(tmp_path / "out"), size_limit="20kb", progress=False)
    report = convert_on_spark(spark, raw, options, min_similarity=MIN_SIMILARITY)
    assert report["partitions"] == 4 and report["samples"] == len(expected)
    assert samples(str(tmp_path / "out" / "train"), tmp_path / "cache") == expected


def test_ray_writes_the_single_machine_samples_to_s3(
    local_ray: Any, crawl: tuple[str, list[tuple[Any, ...]]], s3: S3Server, tmp_path: Path
) -> None:
    raw, expected = crawl
    remote = f"s3://{s3.new_bucket()}/laion"
    options = WriteOptions(out=remote, size_limit="20kb", progress=False)
    report = convert_on_ray(raw, options, min_similarity=MIN_SIMILARITY)
    assert report["samples"] == len(expected)
    assert samples(f"{remote}/train", tmp_path / "cache") == expected


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["spark", "ray"])
def test_the_cli_converts_on_an_engine(
    engine: str, crawl: tuple[str, list[tuple[Any, ...]]], tmp_path: Path
) -> None:
    """As users run it: ``python -m recipes.laion convert --engine spark|ray`` (a local
    Spark or Ray started by the command itself)."""
    import os
    import subprocess
    import sys

    raw, expected = crawl
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    env.pop("RAY_ADDRESS", None)  # never join a cluster found on the machine: start a local one
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "recipes.laion",
            "convert",
            "--in",
            raw,
            "--out",
            str(tmp_path / "out"),
            "--engine",
            engine,
            "--min-similarity",
            str(MIN_SIMILARITY),
            "--size-limit",
            "20kb",
            "--no-progress",
        ],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"engine: {engine}" in done.stdout and f"samples: {len(expected)}" in done.stdout
    assert samples(str(tmp_path / "out" / "train"), tmp_path / "cache") == expected
