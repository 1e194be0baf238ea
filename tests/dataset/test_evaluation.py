"""``whole_batches=False``, for evaluation: each sample once on one rank, at most world - 1
repeats on several, every rank still running the same number of batches (the last short)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from torch.utils.data import DataLoader

from streaming_lightning import MDSWriter
from streaming_lightning.dataset import BatchesLoader, Stream, StreamingDataset
from streaming_lightning.errors import ConfigError

SAMPLES = 20


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("evaluation") / "ds"
    with MDSWriter(out=str(out), columns={"x": "int", "y": "bytes"}, size_limit=120) as writer:
        for i in range(SAMPLES):
            writer.write({"x": i, "y": b"v" * (i % 5)})  # bytes: not the batch fast path
    return str(out)


def _ids(batches: list[dict[str, object]]) -> list[int]:
    return [int(x) for batch in batches for x in np.asarray(batch["x"]).ravel()]


@pytest.mark.parametrize("shuffle", [False, True])
def test_one_rank_sees_every_sample_exactly_once(data: str, shuffle: bool) -> None:
    dataset = StreamingDataset(local=data, batch_size=16, shuffle=shuffle, whole_batches=False)
    assert len(dataset) == SAMPLES
    assert sorted(int(s["x"]) for s in dataset) == list(range(SAMPLES))
    batches = list(DataLoader(dataset, batch_size=16))
    assert [len(b["x"]) for b in batches] == [16, 4]
    padded = StreamingDataset(local=data, batch_size=16, shuffle=shuffle)  # the default
    assert len(padded) == 32 and len(list(padded)) == 32  # training: whole batches


@pytest.mark.parametrize("workers", [0, 2, 3])
def test_the_batch_loader_gives_whole_batches_then_one_short(data: str, workers: int) -> None:
    dataset = StreamingDataset(local=data, batch_size=6, shuffle=True, whole_batches=False)
    loader = BatchesLoader(dataset, num_workers=workers)
    batches = list(loader)
    assert len(loader) == 4 and [len(b["x"]) for b in batches] == [6, 6, 6, 2]
    reference = StreamingDataset(local=data, batch_size=6, shuffle=True, whole_batches=False)
    assert _ids(batches) == [int(s["x"]) for s in reference]  # the rank's order, any workers


@pytest.mark.parametrize("world", [2, 3, 6])
def test_ranks_repeat_at_most_world_minus_one_samples(
    data: str, world: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    per_rank = -(-SAMPLES // world)
    seen: Counter[int] = Counter()
    batch_counts = set()
    for rank in range(world):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", str(world))
        dataset = StreamingDataset(local=data, batch_size=4, shuffle=True, whole_batches=False)
        assert len(dataset) == per_rank
        batches = list(DataLoader(dataset, batch_size=4))
        batch_counts.add(len(batches))
        assert all(len(b["x"]) == 4 for b in batches[:-1])
        seen.update(_ids(batches))
    assert set(seen) == set(range(SAMPLES))
    assert sum(seen.values()) - SAMPLES == per_rank * world - SAMPLES < world
    assert batch_counts == {-(-per_rank // 4)}  # every rank steps the same number of times


def test_resume_mid_evaluation_yields_the_rest(data: str) -> None:
    first = StreamingDataset(local=data, batch_size=4, shuffle=True, whole_batches=False)
    order = [int(s["x"]) for s in first]
    resumed = StreamingDataset(local=data, batch_size=4, shuffle=True, whole_batches=False)
    resumed.load_state_dict(first.state_dict(8, from_beginning=True))
    assert [int(s["x"]) for s in resumed] == order[8:]


def test_per_stream_batching_needs_whole_batches(data: str) -> None:
    streams = [Stream(local=data)]
    with pytest.raises(ConfigError, match="whole_batches=True"):
        StreamingDataset(
            streams=streams, batch_size=4, batching_method="per_stream", whole_batches=False
        )


def test_the_stacked_batch_path_ends_with_the_short_batch_too(tmp_path: Path) -> None:
    with MDSWriter(out=str(tmp_path / "ds"), columns={"x": "int"}, size_limit=120) as writer:
        for i in range(SAMPLES):
            writer.write({"x": i})
    dataset = StreamingDataset(local=str(tmp_path / "ds"), batch_size=8, whole_batches=False)
    assert dataset.batchable  # iter_batches: stacked straight from the shards
    batches = list(BatchesLoader(dataset, num_workers=0))
    assert [len(b["x"]) for b in batches] == [8, 8, 4]
    assert _ids(batches) == list(range(SAMPLES))
