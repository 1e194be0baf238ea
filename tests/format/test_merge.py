from __future__ import annotations

import json

import pytest

from streaming_lightning import LocalDataset, MDSWriter, merge_index
from streaming_lightning.errors import ConfigError, IndexFormatError


def _write_parts(root, parts=3, per_part=25):  # type: ignore[no-untyped-def]
    for part in range(parts):
        with MDSWriter(
            out=str(root / str(part)), columns={"x": "int"}, size_limit=300, compression="zstd"
        ) as w:
            for i in range(per_part):
                w.write({"x": part * 1000 + i})


def test_merge_from_root(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _write_parts(tmp_path)
    merged = merge_index(str(tmp_path))
    assert merged == str(tmp_path / "index.json")
    obj = json.loads((tmp_path / "index.json").read_text())
    assert list(obj) == ["version", "shards"]
    assert obj["shards"][0]["raw_data"]["basename"] == "0/shard.00000.mds"
    assert obj["shards"][0]["zip_data"]["basename"] == "0/shard.00000.mds.zstd"
    ds = LocalDataset(str(tmp_path))
    assert [s["x"] for s in ds] == [p * 1000 + i for p in range(3) for i in range(25)]


def test_merge_from_list_and_idempotent(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _write_parts(tmp_path, parts=2)
    files = [
        str(tmp_path / "1" / "index.json"),
        str(tmp_path / "0"),
        str(tmp_path / "1" / "index.json"),
    ]
    merge_index(files, str(tmp_path))
    assert [s["x"] for s in LocalDataset(str(tmp_path))][:2] == [1000, 1001]
    first = (tmp_path / "index.json").read_bytes()
    merge_index(str(tmp_path))  # the root's own index is not merged into itself
    assert len(LocalDataset(str(tmp_path))) == 50
    assert (tmp_path / "index.json").read_bytes() != first  # root form sorts parts: 0 before 1


def test_merge_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(IndexFormatError, match="no sub-dataset"):
        merge_index(str(tmp_path))
    _write_parts(tmp_path / "a", parts=1)
    with pytest.raises(ConfigError, match="inside a subdirectory"):
        merge_index([str(tmp_path / "a" / "0")], str(tmp_path / "b"))
    with pytest.raises(ConfigError):
        merge_index()
