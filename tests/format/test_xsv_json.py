from __future__ import annotations

import json
import struct

import pytest

from streaming_lightning import CSVWriter, JSONWriter, LocalDataset, TSVWriter, XSVWriter
from streaming_lightning.errors import ConfigError, CorruptDataError, EncodingError
from streaming_lightning.format.index import load_index

ROWS = [{"name": f"row{i}", "count": i * 7, "score": i / 4} for i in range(30)]
COLUMNS = {"name": "str", "count": "int", "score": "float"}


@pytest.mark.parametrize(
    ("cls", "kwargs", "fmt", "ext"),
    [
        (CSVWriter, {}, "csv", "csv"),
        (TSVWriter, {}, "tsv", "tsv"),
        (XSVWriter, {"separator": "|"}, "xsv", "xsv"),
        (JSONWriter, {}, "json", "json"),
    ],
)
@pytest.mark.parametrize("compression", [None, "zstd"])
def test_text_formats_roundtrip(tmp_path, cls, kwargs, fmt, ext, compression) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / fmt
    with cls(
        out=str(out),
        columns=COLUMNS,
        compression=compression,
        hashes=["sha1"],
        size_limit=200,
        **kwargs,
    ) as w:
        for row in ROWS:
            w.write(row)
    shards = load_index(str(out / "index.json"))
    assert len(shards) > 1 and all(s["format"] == fmt for s in shards)
    assert shards[0]["raw_data"]["basename"] == f"shard.00000.{ext}"
    assert shards[0]["raw_meta"]["basename"] == f"shard.00000.{ext}.meta"
    if compression:
        assert shards[0]["zip_meta"]["basename"] == f"shard.00000.{ext}.meta.zstd"
    ds = LocalDataset(str(out), validate_hash="sha1")
    assert list(ds) == ROWS
    assert ds[17] == ROWS[17]


def test_csv_layout(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with CSVWriter(out=str(tmp_path / "c"), columns=COLUMNS) as w:
        for row in ROWS[:2]:
            w.write(row)
    assert (
        tmp_path / "c" / "shard.00000.csv"
    ).read_text() == "count,name,score\n0,row0,0.0\n7,row1,0.25\n"
    meta = (tmp_path / "c" / "shard.00000.csv.meta").read_bytes()
    assert struct.unpack_from("<4I", meta) == (2, 17, 28, 40)
    config = json.loads(meta[16:])
    assert "separator" not in config and config["format"] == "csv" and config["newline"] == "\n"


def test_json_layout(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with JSONWriter(out=str(tmp_path / "j"), columns={"b": "str", "a": "int"}) as w:
        w.write({"b": "x", "a": 1, "extra": "ignored"})
    assert (tmp_path / "j" / "shard.00000.json").read_text() == '{"a": 1, "b": "x"}\n'
    (shard,) = load_index(str(tmp_path / "j" / "index.json"))
    assert shard["columns"] == {"b": "str", "a": "int"}


def test_text_format_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EncodingError, match="unknown XSV encoding"):
        CSVWriter(out=str(tmp_path / "a"), columns={"x": "bytes"})
    with pytest.raises(EncodingError, match="unknown JSON encoding"):
        JSONWriter(out=str(tmp_path / "a"), columns={"x": "ndarray"})
    with pytest.raises(ConfigError, match="separator"):
        CSVWriter(out=str(tmp_path / "a"), columns={"a,b": "str"})
    with CSVWriter(out=str(tmp_path / "b"), columns={"x": "str", "n": "int"}) as w:
        with pytest.raises(EncodingError, match="separator or newline"):
            w.write({"x": "a,b", "n": 1})
        with pytest.raises(EncodingError, match="expects int"):
            w.write({"x": "ab", "n": "1"})
        with pytest.raises(EncodingError, match="missing column"):
            w.write({"x": "ab"})
        w.write({"x": "ok", "n": 2})
    assert list(LocalDataset(str(tmp_path / "b"))) == [{"n": 2, "x": "ok"}]


def test_corrupt_meta_names_the_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with TSVWriter(out=str(tmp_path / "t"), columns=COLUMNS) as w:
        for row in ROWS:
            w.write(row)
    meta = tmp_path / "t" / "shard.00000.tsv.meta"
    data = bytearray(meta.read_bytes())
    data[8:12] = (5).to_bytes(4, "little")  # offsets[1] < offsets[0]
    meta.write_bytes(bytes(data))
    with pytest.raises(CorruptDataError, match="shard.00000.tsv.meta"):
        LocalDataset(str(tmp_path / "t"))[0]
