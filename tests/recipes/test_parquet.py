"""``streaming-lightning convert parquet``: real parquet files (nested folders, several row
groups, every Arrow type with an MDS encoding, a struct given ``json``) round trip sample for
sample, in file order, with parallel workers; types without an encoding, schema mismatches
and nulls stop the conversion naming the file and column."""

from __future__ import annotations

import decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from streaming_lightning import LocalDataset
from streaming_lightning.cli import main

SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("small", pa.int8()),
        ("score", pa.float32()),
        ("text", pa.string()),
        ("blob", pa.binary()),
        ("tokens", pa.list_(pa.int32())),
        ("price", pa.decimal128(9, 2)),
        ("meta", pa.struct([("source", pa.string()), ("rank", pa.int64())])),
        ("flag", pa.bool_()),
    ]
)


def row(i: int) -> dict[str, Any]:
    return {
        "id": i,
        "small": i % 100 - 50,
        "score": i / 4,
        "text": f"row {i} " + "ß" * (i % 3),
        "blob": bytes([i % 256]) * (i % 5 + 1),
        "tokens": list(range(i % 4 + 1)),
        "price": decimal.Decimal(i) / 4,
        "meta": {"source": f"s{i % 3}", "rank": i},
        "flag": i % 2 == 0,
    }


def write_files(root: Path, sizes: list[int]) -> list[dict[str, Any]]:
    """Parquet files ``part-N.parquet`` in nested folders, rows numbered across them."""
    rows, start = [], 0
    for n, size in enumerate(sizes):
        chunk = [row(i) for i in range(start, start + size)]
        path = root / f"group{n % 2}" / f"part-{n}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(chunk, SCHEMA), path, row_group_size=40)
        rows += chunk
        start += size
    return rows


def convert(*args: str) -> int:
    return main(["convert", "parquet", *args, "--no-progress"])


def test_round_trip_in_file_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = write_files(tmp_path / "raw", [120, 75, 200, 1])
    # Sorted paths: group0/part-0, group0/part-2, group1/part-1, group1/part-3.
    order = [*range(0, 120), *range(195, 395), *range(120, 195), 395]
    out = tmp_path / "mds"
    code = convert(
        "--in", str(tmp_path / "raw"), "--out", str(out), "--workers", "2",
        "--columns", "meta=json", "--select", "id,small,score,text,blob,tokens,price,meta",
        "--compression", "zstd", "--size-limit", "4kb",
    )  # fmt: skip
    printed = capsys.readouterr()
    assert code == 0, printed.err
    dataset = LocalDataset(str(out))
    assert len(dataset) == len(rows) and len(dataset.shards) > 4
    for sample, i in zip(dataset, order):
        expected = rows[i]
        assert sample["id"] == i and sample["small"] == expected["small"]
        assert sample["score"] == np.float32(expected["score"])
        assert sample["text"] == expected["text"] and sample["blob"] == expected["blob"]
        assert sample["tokens"].dtype == np.int32
        assert sample["tokens"].tolist() == expected["tokens"]
        assert sample["price"] == expected["price"] and sample["meta"] == expected["meta"]
    # A finished conversion is kept, not overwritten, without --force.
    assert convert("--in", str(tmp_path / "raw"), "--out", str(out), "--select", "id") == 0
    assert "already converted, kept" in capsys.readouterr().err
    assert set(LocalDataset(str(out))[0]) == {
        "id", "small", "score", "text", "blob", "tokens", "price", "meta"
    }  # fmt: skip
    assert (
        convert("--in", str(tmp_path / "raw"), "--out", str(out), "--select", "id", "--force") == 0
    )
    assert set(LocalDataset(str(out))[0]) == {"id"}


def test_types_without_an_encoding_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_files(tmp_path / "raw", [10])
    assert convert("--in", str(tmp_path / "raw"), "--out", str(tmp_path / "o")) == 2
    err = capsys.readouterr().err
    assert "column 'meta'" in err and "struct<" in err and "--columns meta=ENCODING" in err
    assert convert("--in", str(tmp_path / "raw"), "--out", str(tmp_path / "o"), "--columns",
                   "meta=json") == 2  # fmt: skip
    assert "column 'flag'" in capsys.readouterr().err


def test_mismatched_schemas_and_nulls_name_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    pq.write_table(pa.table({"x": [1, 2], "y": ["a", "b"]}), raw / "a.parquet")
    pq.write_table(pa.table({"x": [3], "y": [1.5]}), raw / "b.parquet")
    assert convert("--in", str(raw), "--out", str(tmp_path / "o")) == 2
    err = capsys.readouterr().err
    assert "b.parquet has another schema than" in err and "a.parquet" in err
    (raw / "b.parquet").unlink()
    pq.write_table(pa.table({"x": [3, None], "y": ["c", "d"]}), raw / "b.parquet")
    assert convert("--in", str(raw), "--out", str(tmp_path / "o")) == 2
    assert "b.parquet: row 1, column 'x' is null" in capsys.readouterr().err
    assert convert("--in", str(tmp_path / "none"), "--out", str(tmp_path / "o")) == 2
    assert "No file or folder" in capsys.readouterr().err
    assert convert("--in", str(raw), "--out", str(tmp_path / "o"), "--columns", "x") == 2
    assert "NAME=ENCODING" in capsys.readouterr().err
