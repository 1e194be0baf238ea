"""The epoch plan, as pure functions: coverage, padding, equal shares, worker split."""

from __future__ import annotations

import numpy as np
import pytest

from streaming_lightning.dataset.plan import EpochPlan, PlanSpec
from streaming_lightning.errors import ConfigError

SIZES = tuple(np.random.default_rng(0).integers(1, 80, 57).tolist())


def plan(
    ncn: int, g: int, algo: str = "py1e", epoch: int = 0, sizes: tuple[int, ...] = SIZES
) -> EpochPlan:
    return EpochPlan(PlanSpec(sizes, ncn, g, 1234, epoch, algo, 100))


def dataloader_order(per_worker: list[list[np.ndarray]]) -> np.ndarray:
    """The rank's sample order as a DataLoader yields it: one batch from each worker in turn."""
    rounds = max(map(len, per_worker))
    return np.concatenate([wb[i] for i in range(rounds) for wb in per_worker if i < len(wb)])


@pytest.mark.parametrize("ncn", [1, 2, 3, 8, 13])
@pytest.mark.parametrize("g", [1, 4, 6, 16, 64])
def test_every_sample_at_least_once_and_padding_is_small(ncn: int, g: int) -> None:
    p = plan(ncn, g)
    ids = p.ids(np.arange(p.padded_samples))
    counts = np.bincount(ids, minlength=sum(SIZES))
    assert counts.min() == 1, "a sample was dropped"
    assert counts.max() <= 2
    assert p.padded_samples % g == 0
    # Padding: under one global batch per canonical period, and never more than needed.
    assert p.padded_samples - sum(SIZES) < g * p.period + ncn
    smaller = EpochPlan(PlanSpec(SIZES, ncn, g, 1234, 0, "py1e", 100))
    assert smaller.steps == p.steps


@pytest.mark.parametrize("world", [1, 2, 4, 8])
def test_ranks_partition_the_epoch(world: int) -> None:
    p = plan(4, 16)
    seen = np.concatenate([p.rank_positions(r, world, 0) for r in range(world)])
    assert np.array_equal(np.sort(seen), np.arange(p.padded_samples))
    lengths = {len(p.rank_positions(r, world, 0)) for r in range(world)}
    assert lengths == {p.padded_samples // world}, "every rank gets the same number of samples"


@pytest.mark.parametrize("workers", [1, 2, 3, 4])
def test_workers_round_robin_reproduces_the_rank_order(workers: int) -> None:
    p = plan(2, 8)
    rank_order = p.rank_positions(1, 2, 0)
    per_worker = [p.worker_batches(1, 2, w, workers, 0) for w in range(workers)]
    assert np.array_equal(dataloader_order(per_worker), rank_order)


def test_resume_skips_exactly_the_consumed_positions() -> None:
    p = plan(3, 12)
    start = 5 * 12
    rest = np.concatenate([p.rank_positions(r, 3, start) for r in range(3)])
    assert np.array_equal(np.sort(rest), np.arange(start, p.padded_samples))


def test_order_depends_on_seed_and_epoch_only() -> None:
    a = plan(4, 16, epoch=0)
    ids = a.ids(np.arange(a.padded_samples))
    assert np.array_equal(ids, plan(4, 16, epoch=0).ids(np.arange(a.padded_samples)))
    b = plan(4, 16, epoch=1)
    assert not np.array_equal(ids, b.ids(np.arange(b.padded_samples)))


def test_unshuffled_plan_keeps_storage_order_per_part() -> None:
    p = plan(1, 4, algo="none")
    ids = p.ids(np.arange(sum(SIZES)))
    assert np.array_equal(ids, np.arange(sum(SIZES)))


def test_bad_plans() -> None:
    with pytest.raises(ConfigError, match="no samples"):
        plan(1, 4, sizes=(0, 0))
    with pytest.raises(ConfigError, match="exceeds"):
        plan(10, 4, sizes=(3, 2))
    with pytest.raises(ConfigError, match="not divisible"):
        plan(1, 6).rank_positions(0, 4, 0)


@pytest.mark.parametrize("start", [0, 24, 29, 12 * 7 + 5])
@pytest.mark.parametrize("workers", [1, 3])
def test_worker_chunks_cover_the_rank_rest_in_order(start: int, workers: int) -> None:
    p = plan(3, 12)
    for rank in range(3):
        expected = p.rank_positions(rank, 3, start)
        batches = [p.worker_batches(rank, 3, w, workers, start) for w in range(workers)]
        assert np.array_equal(dataloader_order(batches), expected)
        assert all(len(b) == 4 for wb in batches for b in wb[:-1])
        chunked = [
            c for w in range(workers) for c in p.worker_chunks(rank, 3, w, workers, start, 5)
        ]
        assert sorted(np.concatenate(chunked).tolist()) == sorted(expected.tolist())


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("start", [0, 7 * 3])
def test_batches_of_another_size_than_the_step_share(workers: int, start: int) -> None:
    """whole_batches=False: the plan deals one position per rank a step, and the workers cut
    the rank's positions into device batches of 5 — in the rank's order whatever the worker
    count, every batch whole but the rank's last."""
    p = plan(1, 3, sizes=(20, 20, 17))  # 57 samples over 3 ranks: 19 each, nothing repeated
    assert p.padded_samples == 57
    for rank in range(3):
        expected = p.rank_positions(rank, 3, start)
        batches = [p.worker_batches(rank, 3, w, workers, start, batch=5) for w in range(workers)]
        assert np.array_equal(dataloader_order(batches), expected)
        sizes = [len(b) for b in sorted((b for wb in batches for b in wb), key=lambda b: b[0])]
        assert all(size == 5 for size in sizes[:-1]) and 0 < sizes[-1] <= 5
        assert len(sizes) == -(-len(expected) // 5)
    assert sorted(np.concatenate([p.ids(p.rank_positions(r, 3, 0)) for r in range(3)])) == list(
        range(57)
    )
