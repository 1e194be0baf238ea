"""CSV / TSV / XSV / JSON-lines shards and merge_index: same bytes as mosaicml-streaming 0.13.0."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from streaming_lightning import (
    CSVWriter,
    JSONWriter,
    LocalDataset,
    MDSWriter,
    TSVWriter,
    XSVWriter,
    merge_index,
)
from tests.compat.peer import peer_read_all, streaming
from tests.compat.test_mds_interop import assert_same_dataset

ROWS = [{"name": f"row-{i}", "count": i * 31 - 7, "score": i / 7} for i in range(120)]
COLUMNS = {"name": "str", "count": "int", "score": "float"}

WRITERS = {
    "csv": (CSVWriter, streaming.CSVWriter, {}),
    "tsv": (TSVWriter, streaming.TSVWriter, {}),
    "xsv": (XSVWriter, streaming.XSVWriter, {"separator": "|"}),
    "json": (JSONWriter, streaming.JSONWriter, {}),
}


@pytest.mark.parametrize("fmt", sorted(WRITERS))
@pytest.mark.parametrize("compression", [None, "zstd", "br:3"])
def test_text_formats_both_ways(tmp_path: Path, fmt: str, compression: str | None) -> None:
    ours_cls, peer_cls, extra = WRITERS[fmt]
    ours, theirs = str(tmp_path / "ours"), str(tmp_path / "theirs")
    kwargs: dict[str, Any] = dict(
        columns=COLUMNS, compression=compression, hashes=["md5", "sha256"], size_limit=1500, **extra
    )
    for cls, out in ((ours_cls, ours), (peer_cls, theirs)):
        with cls(out=out, **kwargs) as writer:
            for row in ROWS:
                writer.write(row)
    assert_same_dataset(ours, theirs)
    assert peer_read_all(ours) == ROWS
    assert list(LocalDataset(theirs, validate_hash="sha256")) == ROWS


def test_merge_index_matches_reference(tmp_path: Path) -> None:
    for root in (tmp_path / "ours", tmp_path / "theirs"):
        for part in range(3):
            with MDSWriter(
                out=str(root / f"part{part}"),
                columns={"x": "int"},
                size_limit=500,
                compression="zstd",
            ) as w:
                for i in range(60):
                    w.write({"x": part * 100 + i})
    merge_index(str(tmp_path / "ours"))
    streaming.base.util.merge_index(str(tmp_path / "theirs"), keep_local=True)
    mine = (tmp_path / "ours" / "index.json").read_bytes()
    assert mine == (tmp_path / "theirs" / "index.json").read_bytes()
    # The list form gives the same result, and both libraries read the merged dataset.
    os.unlink(tmp_path / "ours" / "index.json")
    merge_index(
        [str(tmp_path / "ours" / f"part{p}" / "index.json") for p in range(3)],
        str(tmp_path / "ours"),
    )
    assert (tmp_path / "ours" / "index.json").read_bytes() == mine
    expected = [{"x": p * 100 + i} for p in range(3) for i in range(60)]
    assert peer_read_all(str(tmp_path / "ours")) == expected
    assert list(LocalDataset(str(tmp_path / "theirs"))) == expected
