"""Spark DataFrame → MDS with a real Spark (local[2], up to 4 attempts per task): schema
inference, every row exactly once in partition order, a task that crashes half-way retried
without its partial output reaching the merged index, and an S3 output that streams back."""

from __future__ import annotations

import decimal
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streaming_lightning.dataset import StreamingDataset
from streaming_lightning.errors import ConfigError, EncodingError
from streaming_lightning.format.index import load_index
from streaming_lightning.format.writer import OutputExistsError
from tests.fixtures.s3_server import S3Server

pyspark = pytest.importorskip("pyspark", reason="the spark extra is not installed")
from pyspark.sql import types as T  # noqa: E402

from streaming_lightning.convert import dataframe_to_mds, infer_columns  # noqa: E402

SCHEMA = T.StructType(
    [
        T.StructField("id", T.LongType()),
        T.StructField("small", T.ShortType()),
        T.StructField("text", T.StringType()),
        T.StructField("blob", T.BinaryType()),
        T.StructField("score", T.DoubleType()),
        T.StructField("weight", T.FloatType()),
        T.StructField("price", T.DecimalType(10, 3)),
        T.StructField("vector", T.ArrayType(T.FloatType())),
        T.StructField("tokens", T.ArrayType(T.IntegerType())),
    ]
)


def row(i: int) -> tuple[Any, ...]:
    return (
        i,
        i % 300 - 150,
        f"text {i} " + "é" * (i % 4),
        bytes([i % 256]) * (i % 7),
        i / 3,
        float(i % 5) / 2,
        decimal.Decimal(i) / 8,
        [float(i), 0.5],
        list(range(1 + i % 6)),  # MDS ndarrays hold at least one element
    )


def frame(spark: Any, rows: int = 500, partitions: int = 4) -> Any:
    return spark.createDataFrame([row(i) for i in range(rows)], SCHEMA).repartition(
        partitions, "id"
    )


def read(location: str, local: Path | None = None) -> list[dict[str, Any]]:
    dataset = StreamingDataset(remote=location, local=str(local) if local else None)
    return [dataset[i] for i in range(dataset.num_samples)]


def expected(sample: dict[str, Any]) -> tuple[Any, ...]:
    return row(int(sample["id"]))


def as_row(sample: dict[str, Any]) -> tuple[Any, ...]:
    return (
        int(sample["id"]),
        int(sample["small"]),
        sample["text"],
        sample["blob"],
        float(sample["score"]),
        float(sample["weight"]),
        sample["price"],
        sample["vector"].tolist(),
        sample["tokens"].tolist(),
    )


def test_schema_inference_and_refusals() -> None:
    assert infer_columns(SCHEMA) == {
        "id": "int64",
        "small": "int16",
        "text": "str",
        "blob": "bytes",
        "score": "float64",
        "weight": "float32",
        "price": "str_decimal",
        "vector": "ndarray:float32",
        "tokens": "ndarray:int32",
    }
    for bad in (
        T.BooleanType(),
        T.TimestampType(),
        T.MapType(T.StringType(), T.LongType()),
        T.ArrayType(T.StringType()),
    ):
        schema = T.StructType([T.StructField("ok", T.LongType()), T.StructField("col", bad)])
        with pytest.raises(EncodingError, match=rf"'col'.*{bad.simpleString()}.*columns="):
            infer_columns(schema)


def test_every_row_once_in_partition_order(spark: Any, tmp_path: Path) -> None:
    df = frame(spark)
    out = tmp_path / "out"
    result = dataframe_to_mds(df, str(out), compression="zstd", hashes=["xxh64"], size_limit=4096)
    out_path, failed = result  # unpacks like mosaicml-streaming's (out, fail_count)
    assert out_path == str(out) and failed == 0
    assert result.samples == 500 and result.partitions == 4 and result.shards > 4
    samples = read(str(out), tmp_path / "cache")
    assert sorted(as_row(s) for s in samples) == sorted(row(i) for i in range(500))
    assert all(as_row(s) == expected(s) for s in samples)
    # Partition order, and each partition's row order, as Spark holds them.
    by_partition = df.rdd.glom().map(lambda rows: [r["id"] for r in rows]).collect()
    assert [int(s["id"]) for s in samples] == [i for part in by_partition for i in part]
    assert sorted(os.listdir(out / "parts")) == sorted(
        {s["raw_data"]["basename"].split("/")[1] for s in load_index(str(out / "index.json"))}
    )


def test_explicit_columns_select_and_override(spark: Any, tmp_path: Path) -> None:
    df = frame(spark, rows=60, partitions=2)
    result = dataframe_to_mds(
        df, mds_kwargs={"out": str(tmp_path / "o"), "columns": {"id": "int", "text": "str"}}
    )
    samples = read(result.out, tmp_path / "c")
    assert sorted((s["id"], s["text"]) for s in samples) == sorted(
        (i, row(i)[2]) for i in range(60)
    )
    assert set(samples[0]) == {"id", "text"}
    with pytest.raises(ConfigError, match="does not have"):
        dataframe_to_mds(df, str(tmp_path / "x"), columns={"nope": "int"})
    with pytest.raises(ConfigError, match="pass columns="):
        dataframe_to_mds(df, str(tmp_path / "y"), udf_iterable=lambda batch: iter(()))
    with pytest.raises(OutputExistsError):
        dataframe_to_mds(df, result.out)


def test_nulls_are_refused_naming_the_column(spark: Any, tmp_path: Path) -> None:
    df = spark.createDataFrame([(1, "a"), (2, None)], "id long, text string").coalesce(1)
    with pytest.raises(Exception, match="column 'text' is null"):
        dataframe_to_mds(df, str(tmp_path / "o"))


def _crash_first_attempt(batch: Any, marker: str) -> Iterator[dict[str, Any]]:
    """Samples of a partition; the first attempt of partition 1 dies (the Python worker exits,
    as in an OOM kill) after writing several shards."""
    from pyspark import TaskContext

    context = TaskContext.get()
    doomed = context.partitionId() == 1 and context.attemptNumber() == 0
    for record in batch.to_dict("records"):
        yield {"id": int(record["id"]), "vector": np.asarray(record["vector"], np.float32)}
        if doomed and record["id"] > 250 and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(3)


def test_a_task_killed_half_way_is_retried_without_its_partial_output(
    spark: Any, tmp_path: Path
) -> None:
    df = frame(spark, rows=1000, partitions=3).sortWithinPartitions("id")
    marker = tmp_path / "crashed"
    out = tmp_path / "out"
    result = dataframe_to_mds(
        df,
        str(out),
        columns={"id": "int", "vector": "ndarray:float32"},
        size_limit=512,
        udf_iterable=_crash_first_attempt,
        udf_kwargs={"marker": str(marker)},
    )
    assert marker.exists(), "the first attempt of partition 1 never crashed"
    ids = [int(s["id"]) for s in read(str(out), tmp_path / "cache")]
    assert sorted(ids) == list(range(1000)), "a sample lost or repeated"
    index = load_index(str(out / "index.json"))
    parts = sorted({s["raw_data"]["basename"].split("/")[1] for s in index})
    assert len(parts) == 3 and [p[:5] for p in parts] == ["00000", "00001", "00002"]
    assert [p.split(".")[1][:2] for p in parts] == ["a0", "a1", "a0"]  # partition 1 retried
    assert sorted(os.listdir(out / "parts")) == parts, "the crashed attempt's shards remain"
    assert result.samples == 1000


def test_to_s3_and_back(spark: Any, s3: S3Server, tmp_path: Path) -> None:
    bucket = s3.new_bucket()
    remote = f"s3://{bucket}/converted"
    result = dataframe_to_mds(frame(spark, rows=200, partitions=3), remote, compression="zstd")
    assert result.merged_index == f"{remote}/index.json"
    samples = read(remote, tmp_path / "cache")
    assert sorted(as_row(s) for s in samples) == sorted(row(i) for i in range(200))
    with pytest.raises(OutputExistsError):
        dataframe_to_mds(frame(spark, rows=10, partitions=1), remote)


def test_progress_bar_follows_the_partitions(
    spark: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = dataframe_to_mds(
        frame(spark, rows=80, partitions=4), str(tmp_path / "o"), progress_bar=True
    )
    assert result.samples == 80 and result.partitions == 4
    assert "Partitions written: 100%" in capsys.readouterr().err
