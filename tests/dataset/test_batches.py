"""BatchesView yields exactly what a per-sample DataLoader collates, in the same order."""

from __future__ import annotations

from pathlib import Path

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


def test_batches_need_batch_size_and_fixed_columns(tmp_path: Path) -> None:
    root = _write(tmp_path / "ds", 50)
    with pytest.raises(ConfigError, match="batch_size"):
        BatchesView(StreamingDataset(local=root))
    with pytest.raises(ConfigError, match="collate_fn"):
        BatchesLoader(StreamingDataset(local=root, batch_size=8), collate_fn=list)
    text = _write(tmp_path / "text", 50, {"id": "int", "text": "str"})
    dataset = StreamingDataset(local=text, batch_size=8)
    assert not dataset.batchable
    with pytest.raises(ConfigError, match="fixed-size"):
        BatchesView(dataset)
