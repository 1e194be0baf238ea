"""Fixed-size samples decode in batches (one gather + one numpy op per column); the results
must equal sample-by-sample decoding, and a shard whose offsets contradict the fixed size is
refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from streaming_lightning import LocalDataset, MDSWriter
from streaming_lightning.errors import CorruptDataError
from streaming_lightning.format.encodings import get_coder
from tests.samples import SCALARS, normalize

FIXED = {
    "tokens": "ndarray:uint16:16",
    "grid": "ndarray:float32:2,3",
    "label": "int",
    **{f"s_{name}": name for name in SCALARS},
}


def _write(path: Path, columns: dict[str, str], n: int) -> None:
    rng = np.random.default_rng(3)
    with MDSWriter(out=str(path), columns=columns, size_limit=2048) as writer:
        for i in range(n):
            sample = {
                "tokens": rng.integers(0, 60_000, 16, dtype=np.uint16),
                "grid": rng.random((2, 3), dtype=np.float32),
                "label": int(rng.integers(-(1 << 62), 1 << 62)),
                **{f"s_{name}": np.dtype(name).type(i % 100) for name in SCALARS},
            }
            writer.write({k: v for k, v in sample.items() if k in columns})


@pytest.mark.parametrize("columns", [FIXED, {"tokens": "ndarray:uint16:16"}, {"label": "int"}])
def test_batch_decode_equals_per_sample_decode(tmp_path: Path, columns: dict[str, str]) -> None:
    _write(tmp_path / "ds", columns, 300)
    dataset = LocalDataset(str(tmp_path / "ds"))
    shards = dataset.shards
    assert len(shards) >= 2
    rng = np.random.default_rng(0)
    for shard in shards:
        indices = rng.integers(0, shard.samples, 50)
        batch = shard.get_samples(indices)
        one_by_one = [shard.decode_sample(bytes(shard.get_sample_data(int(i)))) for i in indices]
        assert [normalize(s) for s in batch] == [normalize(s) for s in one_by_one]
        for got, expected in zip(batch, one_by_one):
            for name, value in expected.items():
                assert type(got[name]) is type(value), name
                if isinstance(value, np.ndarray):
                    assert got[name].dtype == value.dtype and got[name].shape == value.shape


@pytest.mark.parametrize(
    "encoding", ["int", "ndarray:uint16:16", "ndarray:float64:2,2", *SCALARS, "ndarray:int8:3"]
)
def test_decode_rows_matches_decode(encoding: str) -> None:
    coder = get_coder(encoding)
    assert coder.size is not None
    rows = np.random.default_rng(1).integers(0, 256, (7, coder.size), dtype=np.uint8)
    if encoding.startswith("ndarray:float"):
        rows[:] = 0  # avoid NaN != NaN in the comparison
    batch = coder.decode_rows(rows)
    single = [coder.decode(row.tobytes()) for row in rows]
    assert [normalize({"v": v}) for v in batch] == [normalize({"v": v}) for v in single]


def test_fixed_size_shard_with_irregular_offsets_is_refused(tmp_path: Path) -> None:
    _write(tmp_path / "ds", {"tokens": "ndarray:uint16:16", "label": "int"}, 20)
    index = json.loads((tmp_path / "ds" / "index.json").read_text())
    name = index["shards"][0]["raw_data"]["basename"]
    path = tmp_path / "ds" / name
    data = bytearray(path.read_bytes())
    offsets = np.frombuffer(data, np.uint32, 3, 4).copy()
    offsets[1] += 4  # still inside the file, but sample 0 is now 4 bytes too long
    data[8:12] = offsets[1:2].tobytes()
    path.write_bytes(bytes(data))
    shard = LocalDataset(str(tmp_path / "ds")).shards[0]
    with pytest.raises(CorruptDataError, match=f"{name}.*fixed sample size"):
        shard.get_samples([0, 1])
    assert os.path.exists(path)


@pytest.mark.parametrize(
    "columns",
    [
        {"a": "int", "blob": "bytes", "b": "float32", "c": "ndarray:uint8:3"},
        {"blob": "bytes", "label": "int"},
        {"blob": "bytes", "text": "str", "label": "int"},  # two variable columns
    ],
)
def test_large_samples_read_by_pread_equal_whole_sample_decode(
    tmp_path: Path, columns: dict[str, str]
) -> None:
    """Samples >= LARGE_READ take the pread paths (never the map); same values, same order
    of keys as decoding the stored bytes in one piece."""
    rng = np.random.default_rng(9)
    full = {
        "a": lambda i: i,
        "blob": lambda i: rng.bytes(int(rng.integers(17_000, 40_000))),
        "b": lambda i: np.float32(i / 2),
        "c": lambda i: np.array([i % 7, 1, 2], np.uint8),
        "label": lambda i: -i,
        "text": lambda i: "t" * (i % 5),
    }
    with MDSWriter(out=str(tmp_path / "ds"), columns=columns, size_limit=1 << 17) as writer:
        for i in range(40):
            writer.write({name: full[name](i) for name in columns})
    for shard in LocalDataset(str(tmp_path / "ds")).shards:
        for i in range(shard.samples):
            got = shard[i]
            expected = shard.decode_sample(bytes(shard.get_sample_data(i)))
            assert list(got) == list(expected) and set(got) == set(columns)
            assert normalize(got) == normalize(expected)
