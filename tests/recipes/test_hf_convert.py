"""``streaming-lightning convert hf``: a real ``datasets`` DatasetDict saved with
``save_to_disk`` (several Arrow files per split, ClassLabel, Image, sequences, a nested
feature given ``json``) converts split by split, sample for sample, without the hub."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image as PILImage

from streaming_lightning import LocalDataset
from streaming_lightning.cli import main

datasets = pytest.importorskip("datasets", reason="the hf extra is not installed")


def png(i: int) -> bytes:
    out = io.BytesIO()
    PILImage.fromarray(np.full((4 + i % 3, 5, 3), i % 256, np.uint8)).save(out, "PNG")
    return out.getvalue()


def rows(n: int, start: int = 0) -> dict[str, list[Any]]:
    ids = range(start, start + n)
    return {
        "label": [i % 3 for i in ids],
        "image": [{"bytes": png(i), "path": None} for i in ids],
        "tokens": [list(range(i % 5 + 1)) for i in ids],
        "text": [f"text {i}" for i in ids],
        "score": [i / 8 for i in ids],
        "meta": [{"source": f"s{i % 2}", "rank": i} for i in ids],
    }


def build(root: Path) -> Any:
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Image, Sequence, Value

    features = Features(
        {
            "label": ClassLabel(names=["cat", "dog", "eel"]),
            "image": Image(),
            "tokens": Sequence(Value("int32")),
            "text": Value("string"),
            "score": Value("float32"),
            "meta": {"source": Value("string"), "rank": Value("int64")},
        }
    )
    splits = DatasetDict(
        {
            "train": Dataset.from_dict(rows(90), features=features),
            "test": Dataset.from_dict(rows(20, start=1000), features=features),
        }
    )
    splits.save_to_disk(str(root), num_shards={"train": 3, "test": 1})
    return splits


def test_round_trip_split_by_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build(tmp_path / "saved")
    out = tmp_path / "mds"
    code = main(["convert", "hf", "--in", str(tmp_path / "saved"), "--out", str(out),
                 "--columns", "meta=json", "--workers", "2", "--no-progress"])  # fmt: skip
    printed = capsys.readouterr()
    assert code == 0, printed.err
    for split, n, start in (("train", 90, 0), ("test", 20, 1000)):
        expected = rows(n, start)
        got = list(LocalDataset(str(out / split)))
        assert len(got) == n
        for j, sample in enumerate(got):
            assert sample["label"] == expected["label"][j]
            assert sample["image"] == expected["image"][j]["bytes"]
            assert sample["tokens"].dtype == np.int32
            assert sample["tokens"].tolist() == expected["tokens"][j]
            assert sample["text"] == expected["text"][j]
            assert sample["score"] == np.float32(expected["score"][j])
            assert sample["meta"] == expected["meta"][j]
        features = json.loads((out / split / "features.json").read_text())
        assert features["label"]["names"] == ["cat", "dog", "eel"]
    assert "train_rows: 90" in printed.out and "test_rows: 20" in printed.out


def test_nested_features_need_an_encoding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build(tmp_path / "saved")
    code = main(["convert", "hf", "--in", str(tmp_path / "saved"), "--out",
                 str(tmp_path / "o"), "--split", "test", "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "column 'meta'" in err and "--columns meta=ENCODING" in err
    assert main(["convert", "hf", "--in", str(tmp_path / "saved"), "--out", str(tmp_path / "o"),
                 "--split", "validation"]) == 2  # fmt: skip
    assert "no split ['validation']" in capsys.readouterr().err
    assert main(["convert", "hf", "--in", str(tmp_path / "nothing"), "--out",
                 str(tmp_path / "o")]) == 2  # fmt: skip
