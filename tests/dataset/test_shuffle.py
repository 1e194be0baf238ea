"""Shuffle algorithms: permutations, deterministic, chunkable, and good enough at mixing."""

from __future__ import annotations

import numpy as np
import pytest

from streaming_lightning.dataset.shuffle import (
    SHUFFLE_ALGORITHMS,
    get_algorithm,
    make_layout,
    shuffle_quality,
)

SIZES = np.random.default_rng(3).integers(50, 400, 300).astype(np.int64)
N = int(SIZES.sum())
BLOCK = 4096


def full_order(algo: str, ncn: int, epoch: int = 0, seed: int = 5) -> np.ndarray:
    layout = make_layout(SIZES, ncn, seed, epoch, shuffled=algo != "none")
    fn = get_algorithm(algo)
    return np.concatenate(
        [fn(layout, p, 0, int(layout.part_sizes[p]), seed, epoch, BLOCK) for p in range(ncn)]
    )


@pytest.mark.parametrize("algo", [*SHUFFLE_ALGORITHMS, "none"])
@pytest.mark.parametrize("ncn", [1, 4])
def test_is_a_deterministic_permutation_and_chunks_agree(algo: str, ncn: int) -> None:
    order = full_order(algo, ncn)
    assert np.array_equal(np.sort(order), np.arange(N))
    assert np.array_equal(order, full_order(algo, ncn))
    layout = make_layout(SIZES, ncn, 5, 0, shuffled=algo != "none")
    size = int(layout.part_sizes[0])
    fn = get_algorithm(algo)
    for lo in (0, 1, size // 3, size - 17):
        hi = min(size, lo + 777)
        assert np.array_equal(fn(layout, 0, lo, hi, 5, 0, BLOCK), order[lo:hi]), lo


@pytest.mark.parametrize("algo", SHUFFLE_ALGORITHMS)
def test_each_epoch_reshuffles(algo: str) -> None:
    assert not np.array_equal(full_order(algo, 2, epoch=0), full_order(algo, 2, epoch=1))


def test_canonical_parts_keep_their_shards_across_epochs() -> None:
    """Locality: part p reads the same set of samples every epoch."""
    bounds = (np.arange(5) * N) // 4
    for algo in ("py1s", "py1e", "py1b"):
        a, b = full_order(algo, 4, epoch=0), full_order(algo, 4, epoch=7)
        for p in range(4):
            assert set(a[bounds[p] : bounds[p + 1]].tolist()) == set(
                b[bounds[p] : bounds[p + 1]].tolist()
            )


def _quality(order: np.ndarray) -> tuple[float, float]:
    quality = shuffle_quality(order, SIZES, window=64, min_shards=8)
    return quality.neighbour_distance, quality.shard_mixing


def test_shuffle_quality_is_bounded() -> None:
    results = {algo: _quality(full_order(algo, 1)) for algo in [*SHUFFLE_ALGORITHMS, "none"]}
    # Unshuffled: neighbours stay neighbours and windows come from one or two shards.
    assert results["none"][0] < 0.001 and results["none"][1] == 0
    # naive: uniform mixing; adjacent samples land about N/3 apart.
    assert 0.3 < results["naive"][0] < 0.37 and results["naive"][1] == 1.0
    # py1s keeps shards together: neighbours stay close, windows are not mixed.
    assert results["py1s"][1] < 0.05
    # Block and expanded shuffles mix shards within every window.
    for algo in ("py1b", "py1br", "py1e"):
        assert results[algo][1] > 0.95, (algo, results[algo])
        assert results[algo][0] > 0.01, (algo, results[algo])


def test_quality_ignores_padding_and_rejects_orders_that_miss_samples() -> None:
    order = full_order("naive", 1)
    padded = np.concatenate([order, order[:5]])
    assert shuffle_quality(padded, SIZES) == shuffle_quality(order, SIZES)
    with pytest.raises(ValueError, match="distinct ids"):
        shuffle_quality(order[:-1], SIZES)
