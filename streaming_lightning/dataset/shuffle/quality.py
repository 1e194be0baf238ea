"""How well an epoch's sample order mixes the dataset: two numbers a user can compare.

Datasets often arrive sorted (by class, source or date) and are written to shards in that order,
so a shuffle is good when (a) samples that were neighbours on disk end up far apart and (b) any
short run of the output (a batch) draws from many shards. Both are cheap numpy over the order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray


@dataclass(frozen=True)
class ShuffleQuality:
    #: Mean output distance of samples adjacent on disk, over the epoch length (uniform random
    #: shuffling gives about 1/3; no shuffling about 1/N).
    neighbour_distance: float
    #: Fraction of consecutive ``window``-sample runs that draw from >= ``min_shards`` shards.
    shard_mixing: float
    window: int
    min_shards: int


def first_occurrences(order: ArrayLike) -> NDArray[np.int64]:
    """The order with repeats (epoch padding) removed, keeping each sample's first position."""
    ids = np.asarray(order, dtype=np.int64)
    _, first = np.unique(ids, return_index=True)
    return ids[np.sort(first)]


def shuffle_quality(
    order: ArrayLike, shard_sizes: ArrayLike, window: int = 64, min_shards: int = 8
) -> ShuffleQuality:
    """Measure an epoch ``order`` (a permutation of sample ids 0..N-1; padding repeats are
    dropped) over shards of ``shard_sizes`` samples laid out in id order."""
    ids = first_occurrences(order)
    n = int(np.sum(shard_sizes))
    if len(ids) != n or (n and (ids.min() != 0 or ids.max() != n - 1)):
        raise ValueError(f"order covers {len(ids)} distinct ids, the shards hold {n} samples")
    where = np.empty(n, np.int64)
    where[ids] = np.arange(n)
    distance = float(np.mean(np.abs(np.diff(where)))) / n if n > 1 else 0.0
    shard_of = np.searchsorted(np.cumsum(shard_sizes), ids, side="right")
    runs = shard_of[: n // window * window].reshape(-1, window)
    if len(runs) == 0:
        mixing = 0.0
    else:
        distinct = np.array([len(np.unique(run)) for run in runs])
        mixing = float(np.mean(distinct >= min_shards))
    return ShuffleQuality(distance, mixing, window, min_shards)
