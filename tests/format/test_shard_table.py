"""ShardTable: an index as flat arrays in one file — what it records, and that a damaged or
forged table file is refused with an error naming it."""

from __future__ import annotations

import json
import pickle
import struct
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streaming_lightning import MDSWriter
from streaming_lightning.errors import CorruptDataError, UnsafePathError
from streaming_lightning.format.index import load_index
from streaming_lightning.format.shard_table import MAGIC, ShardTable


def dataset(
    root: Path, compression: str | None = "zstd", samples: int = 60
) -> list[dict[str, Any]]:
    with MDSWriter(
        out=str(root), columns={"x": "int", "s": "str"}, compression=compression, size_limit=300
    ) as writer:
        for i in range(samples):
            writer.write({"x": i, "s": "v" * (i % 7)})
    return load_index(str(root / "index.json"))


def written(table: ShardTable, path: Path, digest: str = "d1") -> Path:
    with open(path, "wb") as file:
        table.write(file, index_digest=digest)
    return path


def test_table_records_every_shard(tmp_path: Path) -> None:
    specs = dataset(tmp_path / "ds")
    table = ShardTable.build(specs)
    assert len(table) == len(specs) > 3
    assert table.samples.tolist() == [s["samples"] for s in specs]
    assert table.raw_bytes.tolist() == [s["raw_data"]["bytes"] for s in specs]
    assert table.zip_bytes.tolist() == [s["zip_data"]["bytes"] for s in specs]
    assert table.stored_bytes.tolist() == table.zip_bytes.tolist()
    assert table.footprint(True).tolist() == (table.raw_bytes + table.zip_bytes).tolist()
    assert table.footprint(False).tolist() == table.raw_bytes.tolist()
    for i, spec in enumerate(specs):
        assert table.spec(i) == spec
    assert table.directories == [""]
    assert table.template_shards == [0]
    raw = [s["raw_data"]["basename"] for s in specs]
    zipped = [s["zip_data"]["basename"] for s in specs]
    found = table.find_files([*raw, *zipped, "index.json", "", "x" * 500])
    assert (found[: 2 * len(specs)] >= 0).all() and (found[2 * len(specs) :] == -1).all()
    assert table.file_shards[found[: len(specs)]].tolist() == list(range(len(specs)))
    assert not table.file_downloaded[found[: len(specs)]].any()  # made by decompressing
    assert table.file_downloaded[found[len(specs) : 2 * len(specs)]].all()


def test_uncompressed_files_are_downloaded_and_subdirectories_listed(tmp_path: Path) -> None:
    specs = dataset(tmp_path / "ds", compression=None)
    for i, spec in enumerate(specs):
        spec["raw_data"]["basename"] = f"part{i % 2}/{spec['raw_data']['basename']}"
    table = ShardTable.build(specs)
    assert table.directories == ["part0", "part1"]
    assert table.stored_bytes.tolist() == table.raw_bytes.tolist()
    assert (table.zip_bytes == 0).all()
    found = table.find_files([s["raw_data"]["basename"] for s in specs])
    assert table.file_downloaded[found].all()


def test_distinct_column_layouts_are_templates(tmp_path: Path) -> None:
    specs = dataset(tmp_path / "ds")
    specs[2] = {**specs[2], "column_names": ["y", "s"]}
    assert ShardTable.build(specs).template_shards == [0, 2]  # shard 3 is like shard 0


def test_two_shards_naming_one_file_are_refused(tmp_path: Path) -> None:
    specs = dataset(tmp_path / "ds")
    specs[1]["raw_data"] = dict(specs[0]["raw_data"])
    with pytest.raises(CorruptDataError, match="the same file"):
        ShardTable.build(specs, source="idx.json")


def test_write_load_and_pickle_round_trip(tmp_path: Path) -> None:
    specs = dataset(tmp_path / "ds")
    built = ShardTable.build(specs)
    path = written(built, tmp_path / "t.table")
    loaded = ShardTable.load(str(path), index_digest="d1")
    for name in ShardTable.ARRAYS:
        assert np.array_equal(loaded.arrays[name], built.arrays[name]), name
    assert loaded.meta == built.meta and loaded.index_digest == "d1"
    again = pickle.loads(pickle.dumps(loaded))
    assert again.path == str(path) and again.index_digest == "d1"
    assert [again.spec(i) for i in range(len(again))] == specs
    in_memory = pickle.loads(pickle.dumps(built))
    assert in_memory.path is None and in_memory.samples.tolist() == built.samples.tolist()


def test_an_empty_index_makes_an_empty_table(tmp_path: Path) -> None:
    path = written(ShardTable.build([]), tmp_path / "t.table")
    table = ShardTable.load(str(path))
    assert len(table) == 0 and table.find_files(["a"]).tolist() == [-1]


def _header(path: Path) -> tuple[dict[str, Any], int]:
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[8:16])
    return json.loads(data[16 : 16 + length]), length


def _rewrite_header(path: Path, change: Any) -> None:
    """Edit the header JSON in place, keeping its length (padding with spaces)."""
    data = bytearray(path.read_bytes())
    header, length = _header(path)
    change(header)
    text = json.dumps(header, separators=(",", ":")).encode()
    assert len(text) <= length
    data[16 : 16 + length] = text + b" " * (length - len(text))
    path.write_bytes(bytes(data))


def _bad_offsets(header: dict[str, Any]) -> None:
    header["arrays"]["specs"]["at"] = 10**12


def _bad_dtype(header: dict[str, Any]) -> None:
    header["arrays"]["samples"]["dtype"] = "|O"


def _bad_shape(header: dict[str, Any]) -> None:
    header["arrays"]["samples"]["shape"] = [1]


def _bad_template(header: dict[str, Any]) -> None:
    header["meta"]["template_shards"] = [10**6]


def _escaping_directory(header: dict[str, Any]) -> None:
    header["meta"]["directories"] = ["../.."]


@pytest.mark.parametrize(
    "change",
    [_bad_offsets, _bad_dtype, _bad_shape, _bad_template, _escaping_directory],
    ids=lambda f: f.__name__,
)
def test_a_forged_header_is_refused_naming_the_file(tmp_path: Path, change: Any) -> None:
    path = written(ShardTable.build(dataset(tmp_path / "ds")), tmp_path / "t.table")
    _rewrite_header(path, change)
    with pytest.raises((CorruptDataError, UnsafePathError), match=str(path)):
        ShardTable.load(str(path))


def test_damaged_files_are_refused_naming_the_file(tmp_path: Path) -> None:
    table = ShardTable.build(dataset(tmp_path / "ds"))
    path = written(table, tmp_path / "t.table")
    good = path.read_bytes()
    cases = {
        "empty": b"",
        "magic": b"NOTATABL" + good[8:],
        "truncated": good[:-7],
        "longer": good + b"\0",
        "header length": MAGIC + struct.pack("<Q", 1 << 40) + good[16:],
        "header json": good[:16] + b"[" + good[17:],
    }
    for name, data in cases.items():
        path.write_bytes(data)
        with pytest.raises(CorruptDataError, match=str(path)):
            ShardTable.load(str(path))
            pytest.fail(f"a table with a bad {name} loaded")
    path.write_bytes(good)
    with pytest.raises(CorruptDataError, match="another index"):
        ShardTable.load(str(path), index_digest="other")


def test_values_out_of_range_are_refused(tmp_path: Path) -> None:
    built = ShardTable.build(dataset(tmp_path / "ds"))
    for array, value in [("samples", -1), ("spec_offsets", 10**9), ("file_shards", 10**6)]:
        arrays = {name: np.array(a) for name, a in built.arrays.items()}
        arrays[array][1] = value
        path = written(ShardTable(arrays, built.meta), tmp_path / f"{array}.table")
        with pytest.raises(CorruptDataError, match="out of range"):
            ShardTable.load(str(path))
    arrays = {name: np.array(a) for name, a in built.arrays.items()}
    arrays["file_names"] = arrays["file_names"][::-1].copy()  # no longer sorted
    path = written(ShardTable(arrays, built.meta), tmp_path / "unsorted.table")
    with pytest.raises(CorruptDataError, match="out of range"):
        ShardTable.load(str(path))


def test_a_corrupt_spec_is_named_when_read(tmp_path: Path) -> None:
    built = ShardTable.build(dataset(tmp_path / "ds"))
    arrays = {name: np.array(a) for name, a in built.arrays.items()}
    arrays["specs"][int(arrays["spec_offsets"][1])] = ord("#")
    path = written(ShardTable(arrays, built.meta), tmp_path / "t.table")
    table = ShardTable.load(str(path))
    assert table.spec(0)
    with pytest.raises(CorruptDataError, match="shard 1"):
        table.spec(1)


def test_mutated_tables_load_or_fail_cleanly(tmp_path: Path) -> None:
    """Random byte edits, truncations and extensions of a valid table: it loads (and every
    spec reads as a dict or fails naming the table), or fails naming the table — never
    another exception, and never an allocation sized by a forged shape."""
    from hypothesis import HealthCheck, given, seed, settings
    from hypothesis import strategies as st

    good = written(ShardTable.build(dataset(tmp_path / "ds")), tmp_path / "good.table")
    data = good.read_bytes()
    path = tmp_path / "mutated.table"
    edits = st.lists(
        st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)), min_size=1, max_size=8
    )

    sizes = st.one_of(st.none(), st.none(), st.none(), st.integers(0, len(data) + 8))
    outcomes: Counter[str] = Counter()

    @seed(11)
    @settings(
        max_examples=600,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(edits=edits, cut=sizes, in_header=st.booleans())
    def check(edits: list[tuple[int, int]], cut: int | None, in_header: bool) -> None:
        mutated = bytearray(data)
        header_end = 16 + struct.unpack("<Q", data[8:16])[0]
        for position, value in edits:
            mutated[position % header_end if in_header else position] = value
        if cut is not None:
            mutated = mutated[:cut] if cut < len(data) else mutated + bytes(cut - len(data))
        path.write_bytes(bytes(mutated))
        try:
            table = ShardTable.load(str(path))
        except (CorruptDataError, UnsafePathError) as err:
            assert str(path) in str(err)
            outcomes["refused"] += 1
            return
        outcomes["loaded"] += 1
        for i in range(len(table)):
            try:
                assert isinstance(table.spec(i), dict)
            except CorruptDataError as err:
                assert str(path) in str(err)
                outcomes["bad spec"] += 1
        table.find_files(["shard.00000.mds", "nothing"])

    check()
    print(dict(outcomes))
    assert outcomes["refused"] and outcomes["loaded"] and outcomes["bad spec"], outcomes
