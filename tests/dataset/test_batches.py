"""BatchesView yields exactly what a per-sample DataLoader collates, in the same order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from streaming_lightning import MDSWriter
from streaming_lightning.dataset import BatchesLoader, BatchesView, StreamingDataset
from streaming_lightning.errors import ConfigError


def _write(path: Path, n: int, columns: dict[str, str] | None = None) -> str:
    columns = columns or {"tokens": "ndarray:uint16:8", "id": "int", "w": "float32"}
    rng = np.random.default_rng(0)
    with MDSWriter(out=str(path), columns=columns, size_limit=1 << 10) as writer:
        for i in range(n):
            writer.write(
                {
                    "tokens": rng.integers(0, 60_000, 8, dtype=np.uint16),
                    "id": i,
                    "w": np.float32(i / 7),
                    "text": f"s{i}",
                }
            )
    return str(path)


def _batches(loader: DataLoader) -> list[dict[str, torch.Tensor]]:  # type: ignore[type-arg]
    return list(loader)


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("shuffle", [False, True])
def test_batches_equal_collated_samples(tmp_path: Path, num_workers: int, shuffle: bool) -> None:
    root = _write(tmp_path / "ds", 997)
    kwargs = {"local": root, "batch_size": 32, "shuffle": shuffle, "num_canonical_nodes": 4}
    per_sample = _batches(DataLoader(StreamingDataset(**kwargs), 32, num_workers=num_workers))
    view = BatchesView(StreamingDataset(**kwargs))
    batched = _batches(DataLoader(view, batch_size=None, num_workers=num_workers))
    assert len(batched) == len(per_sample) == len(view)
    loader = BatchesLoader(StreamingDataset(**kwargs), num_workers=num_workers)
    assert len(loader) == len(view)
    for got, expected in zip(_batches(loader), batched):
        assert list(got) == list(expected)
        assert all(torch.equal(got[name], expected[name]) for name in expected)
    for got, expected in zip(batched, per_sample):
        assert list(got) == list(expected)
        for name in expected:
            assert got[name].dtype == expected[name].dtype, name
            assert torch.equal(got[name], expected[name]), name
    ids = torch.cat([b["id"] for b in batched])
    assert set(ids.tolist()) == set(range(997))


def test_batches_need_batch_size(tmp_path: Path) -> None:
    root = _write(tmp_path / "ds", 50)
    with pytest.raises(ConfigError, match="batch_size"):
        BatchesView(StreamingDataset(local=root))
    with pytest.raises(ConfigError, match="collate_fn"):
        BatchesLoader(StreamingDataset(local=root, batch_size=8), collate_fn=list)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_variable_columns_equal_default_collate(tmp_path: Path, num_workers: int) -> None:
    """bytes (packed), str and variable arrays (default_collate), numbers (numpy)."""
    columns = {
        "id": "int",
        "blob": "bytes",
        "text": "str",
        "x": "float64",
        "arr": "ndarray:int32",
        "meta": "json",
    }
    rng = np.random.default_rng(5)
    with MDSWriter(out=str(tmp_path / "v"), columns=columns, size_limit=1 << 12) as writer:
        for i in range(301):
            writer.write(
                {
                    "id": i,
                    "blob": rng.bytes(int(rng.integers(0, 400))),
                    "text": f"sample {i}",
                    "x": np.float64(i / 3),
                    "arr": np.arange(3, dtype=np.int32) * i,
                    "meta": {"i": i},
                }
            )
    kwargs = {"local": str(tmp_path / "v"), "batch_size": 16, "shuffle": True}
    dataset = StreamingDataset(**kwargs)
    assert not dataset.batchable
    expected = list(DataLoader(StreamingDataset(**kwargs), 16, num_workers=num_workers))
    got = list(BatchesLoader(dataset, num_workers=num_workers))
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert list(a) == list(b)
        _assert_same(a, b)


def _assert_same(got: Any, expected: Any) -> None:
    assert type(got) is type(expected)
    if isinstance(expected, torch.Tensor):
        assert got.dtype == expected.dtype and torch.equal(got, expected)
    elif isinstance(expected, dict):
        assert list(got) == list(expected)
        for key in expected:
            _assert_same(got[key], expected[key])
    elif isinstance(expected, list):
        assert len(got) == len(expected)
        for x, y in zip(got, expected):
            _assert_same(x, y)
    else:
        assert got == expected
