"""Ray Data → MDS with a real local Ray (2 CPUs): schema inference, every row exactly once in
the Dataset's order, a write task killed half-way and retried without its partial output in
the merged index, and an S3 output that streams back."""

from __future__ import annotations

import decimal
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from streaming_lightning.dataset import StreamingDataset
from streaming_lightning.errors import ConfigError, EncodingError
from streaming_lightning.format.index import load_index
from streaming_lightning.format.writer import OutputExistsError
from tests.fixtures.s3_server import S3Server

ray = pytest.importorskip("ray", reason="the ray extra is not installed")

from streaming_lightning.convert import (  # noqa: E402
    MDSDatasink,
    WriteSettings,
    infer_arrow_columns,
    write_mds,
)
from streaming_lightning.convert.parts import check_output  # noqa: E402


def item(i: int) -> dict[str, Any]:
    return {
        "id": i,
        "text": f"text {i} " + "é" * (i % 4),
        "blob": bytes([i % 256]) * (i % 7),
        "score": i / 3,
        "vector": np.array([i, 0.5], np.float32),
        "tokens": list(range(1 + i % 5)),
        "price": decimal.Decimal(i) / 8,
    }


def dataset(rows: int, blocks: int) -> Any:
    return ray.data.from_items([item(i) for i in range(rows)], override_num_blocks=blocks)


def as_tuple(sample: dict[str, Any]) -> tuple[Any, ...]:
    return (
        int(sample["id"]),
        sample["text"],
        sample["blob"],
        float(sample["score"]),
        sample["vector"].tolist(),
        sample["tokens"].tolist(),
        sample["price"],
    )


def expected(i: int) -> tuple[Any, ...]:
    row = item(i)
    return (
        i,
        row["text"],
        row["blob"],
        row["score"],
        row["vector"].tolist(),
        row["tokens"],
        row["price"],
    )


def read(location: str, local: Path) -> list[dict[str, Any]]:
    ds = StreamingDataset(remote=location, local=str(local))
    return [ds[i] for i in range(ds.num_samples)]


def test_arrow_schema_inference_and_refusals() -> None:
    schema = pa.schema(
        [
            ("s", pa.large_string()),
            ("b", pa.binary()),
            ("i", pa.int16()),
            ("u", pa.uint32()),
            ("f", pa.float32()),
            ("d", pa.decimal128(10, 2)),
            ("l", pa.list_(pa.int64())),
            ("fl", pa.list_(pa.float64(), 3)),
        ]
    )
    assert infer_arrow_columns(schema) == {
        "s": "str",
        "b": "bytes",
        "i": "int16",
        "u": "uint32",
        "f": "float32",
        "d": "str_decimal",
        "l": "ndarray:int64",
        "fl": "ndarray:float64",
    }
    for bad in (
        pa.bool_(),
        pa.timestamp("s"),
        pa.map_(pa.string(), pa.int64()),
        pa.list_(pa.string()),
    ):
        with pytest.raises(EncodingError, match=r"'col'.*columns="):
            infer_arrow_columns(pa.schema([("col", bad)]))


def test_every_row_once_in_dataset_order(local_ray: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = write_mds(dataset(400, 5), str(out), compression="zstd", size_limit=4096)
    assert (result.samples, result.partitions) == (400, 5) and result.shards > 5
    samples = read(str(out), tmp_path / "cache")
    assert [as_tuple(s) for s in samples] == [expected(i) for i in range(400)]
    with pytest.raises(OutputExistsError):
        write_mds(dataset(4, 1), str(out))
    with pytest.raises(ConfigError, match="does not have"):
        write_mds(dataset(4, 1), str(tmp_path / "x"), columns={"nope": "int"})


class CrashingSink(MDSDatasink):
    """The first attempt of write task 1 dies (its worker process exits) after 120 rows."""

    def __init__(self, marker: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.marker = marker

    def write(self, blocks: Iterable[Any], ctx: Any) -> str:
        self.doomed = ctx.task_idx == 1 and not os.path.exists(self.marker)
        return super().write(blocks, ctx)

    def rows(self, blocks: Iterable[Any]) -> Iterator[dict[str, Any]]:
        for n, row in enumerate(super().rows(blocks)):
            yield row
            if self.doomed and n == 120:
                open(self.marker, "w").close()
                os._exit(3)


def test_a_task_killed_half_way_is_retried_without_its_partial_output(
    local_ray: Any, tmp_path: Path
) -> None:
    out, marker = tmp_path / "out", tmp_path / "crashed"
    settings = WriteSettings(columns={"id": "int64", "vector": "ndarray:float32"}, size_limit=512)
    check_output(str(out), exist_ok=False)
    sink = CrashingSink(str(marker), str(out), settings)
    dataset(900, 3).write_datasink(
        sink, ray_remote_args={"max_retries": 3, "retry_exceptions": True}
    )
    assert marker.exists(), "task 1 never crashed"
    assert sink.result is not None and sink.result.samples == 900
    ids = [int(s["id"]) for s in read(str(out), tmp_path / "cache")]
    assert ids == list(range(900)), "a sample lost, repeated or out of order"
    parts = sorted(
        {s["raw_data"]["basename"].split("/")[1] for s in load_index(str(out / "index.json"))}
    )
    assert [p[:5] for p in parts] == ["00000", "00001", "00002"]
    assert sorted(os.listdir(out / "parts")) == parts, "the killed attempt's shards remain"


def test_to_s3_and_back(local_ray: Any, s3: S3Server, tmp_path: Path) -> None:
    remote = f"s3://{s3.new_bucket()}/converted"
    result = write_mds(dataset(150, 3), remote, hashes=["xxh64"])
    assert result.merged_index == f"{remote}/index.json"
    samples = read(remote, tmp_path / "cache")
    assert [as_tuple(s) for s in samples] == [expected(i) for i in range(150)]
