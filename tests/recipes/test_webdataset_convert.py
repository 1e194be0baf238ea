"""``streaming-lightning convert webdataset``: real webdataset tar shards (key.ext members,
keys with folders and dots in the extension, JPEG bytes, class ids, captions, JSON, .npy)
convert sample for sample in tar and member order, decoded as webdataset decodes them; a
sample missing a field stops the conversion naming the tar and key."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streaming_lightning import LocalDataset
from streaming_lightning.cli import main


def npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


def sample(i: int) -> dict[str, bytes]:
    return {
        "jpg": b"\xff\xd8fake-jpeg-" + bytes([i]) * 20,
        "cls": str(i % 7).encode(),
        "txt": f"caption {i} é".encode(),
        "json": json.dumps({"i": i, "tags": ["a", str(i)]}).encode(),
        "seg.png": b"\x89PNG" + bytes([i % 256]) * 8,
        "npy": npy(np.arange(i % 4 + 1, dtype=np.float32).reshape(1, -1)),
    }


def write_tar(path: Path, keys: list[str], drop: tuple[str, str] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for key in keys:
            i = int(key.rsplit("/", 1)[-1])
            for ext, data in sample(i).items():
                if drop == (key, ext):
                    continue
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def check(got: dict[str, Any], key: str) -> None:
    i = int(key.rsplit("/", 1)[-1])
    raw = sample(i)
    assert got["__key__"] == key
    assert got["jpg"] == raw["jpg"] and got["seg.png"] == raw["seg.png"]
    assert got["cls"] == i % 7 and got["txt"] == f"caption {i} é"
    assert got["json"] == {"i": i, "tags": ["a", str(i)]}
    assert got["npy"].dtype == np.float32 and got["npy"].shape == (1, i % 4 + 1)


def test_round_trip_in_tar_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys_a = [f"train/{i:04d}" for i in range(0, 30)]
    keys_b = [f"train/{i:04d}" for i in range(30, 45)]
    write_tar(tmp_path / "raw" / "shard-000000.tar", keys_a)
    write_tar(tmp_path / "raw" / "shard-000001.tar", keys_b)
    out = tmp_path / "mds"
    code = main(["convert", "webdataset", "--in", str(tmp_path / "raw"), "--out", str(out),
                 "--workers", "2", "--no-progress"])  # fmt: skip
    printed = capsys.readouterr()
    assert code == 0, printed.err
    dataset = LocalDataset(str(out))
    assert [s["__key__"] for s in dataset] == keys_a + keys_b
    for got in dataset:
        check(got, got["__key__"])
    columns = dict(zip(dataset.shards[0].column_names, dataset.shards[0].column_encodings))
    assert columns == {"__key__": "str", "cls": "int", "jpg": "bytes", "json": "json",
                       "npy": "ndarray", "seg.png": "bytes", "txt": "str"}  # fmt: skip


def test_a_sample_missing_a_field_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_tar(tmp_path / "raw" / "a.tar", [f"{i:04d}" for i in range(5)], drop=("0003", "cls"))
    code = main(["convert", "webdataset", "--in", str(tmp_path / "raw"), "--out",
                 str(tmp_path / "o"), "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "a.tar: sample '0003'" in err and "missing ['cls']" in err
    (tmp_path / "bad.tar").write_bytes(b"not a tar at all" * 40)
    assert main(["convert", "webdataset", "--in", str(tmp_path / "bad.tar"), "--out",
                 str(tmp_path / "o2")]) == 2  # fmt: skip
    assert "not a readable tar file" in capsys.readouterr().err
