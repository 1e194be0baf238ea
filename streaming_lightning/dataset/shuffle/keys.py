"""Counter-based random numbers: the value for sample ``i`` is a hash of (seed, purpose, i).

A stateful RNG must be run from the start to reach sample ``i``; a hash can be evaluated for
any slice of samples. That is what lets the epoch plan be computed in chunks — the first batch
or a resume at 90% of an epoch costs a chunk, not the whole epoch.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_MASK = (1 << 64) - 1


def _mix(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """splitmix64's finaliser: a bijection on uint64 with good avalanche."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def stream_key(*parts: int) -> int:
    """Fold integers (seed, epoch, purpose ...) into one 64-bit stream key."""
    key = 0x243F6A8885A308D3
    for part in parts:
        key = int(
            _mix(np.array([(key ^ (part & _MASK)) * 0x9E3779B97F4A7C15 & _MASK], np.uint64))[0]
        )
    return key


def uniform(key: int, index: NDArray[np.int64]) -> NDArray[np.float64]:
    """Uniform floats in [0, 1), one per index, reproducible for any subset of indices."""
    with np.errstate(over="ignore"):
        x = _mix(np.asarray(index, np.int64).astype(np.uint64) * _GOLDEN + np.uint64(key))
    return (x >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def integers(key: int, index: NDArray[np.int64], low: int, high: int) -> NDArray[np.int64]:
    """Integers in [low, high), one per index."""
    return low + (uniform(key, index) * (high - low)).astype(np.int64)


def permute_within(
    key: int,
    group_ids: NDArray[np.int64],
    sizes: NDArray[np.int64],
    group: NDArray[np.int64],
    index: NDArray[np.int64],
) -> NDArray[np.int64]:
    """A keyed pseudo-random permutation of ``[0, sizes[g])`` for each group ``g``, evaluated at
    ``index``. Element ``j`` belongs to group ``group[j]`` (an index into ``group_ids`` and
    ``sizes``); ``group_ids`` are stable identifiers, so a group permutes the same way whatever
    other groups are computed alongside it.

    A 4-round Feistel network on the smallest even-bit power of two >= size, with cycle walking
    back into range: a bijection per group, computed for any subset of elements without
    sorting (O(n) instead of O(n log n)), which is what makes within-shard shuffles cheap.
    """
    group = np.asarray(group, np.int64)
    sizes = np.asarray(sizes, np.int64)
    bits = np.ceil(np.log2(np.maximum(sizes, 2))).astype(np.int64)
    bits += bits & 1
    half_g = (bits // 2).astype(np.uint64)
    with np.errstate(over="ignore"):
        key_g = _mix(np.asarray(group_ids, np.int64).astype(np.uint64) * _GOLDEN + np.uint64(key))
    half, mask, keys, limit = (
        half_g[group],
        (np.uint64(1) << half_g[group]) - np.uint64(1),
        key_g[group],
        sizes[group].astype(np.uint64),
    )
    value = _feistel(np.asarray(index, np.int64).astype(np.uint64), half, mask, keys)
    todo = np.flatnonzero(value >= limit)
    while len(todo):  # cycle-walk what fell outside [0, size): at most a few rounds
        value[todo] = _feistel(value[todo], half[todo], mask[todo], keys[todo])
        todo = todo[value[todo] >= limit[todo]]
    return value.astype(np.int64)


def _feistel(
    value: NDArray[np.uint64],
    half: NDArray[np.uint64],
    mask: NDArray[np.uint64],
    keys: NDArray[np.uint64],
) -> NDArray[np.uint64]:
    left, right = value >> half, value & mask
    with np.errstate(over="ignore"):
        for round_key in (0x1B873593, 0xCC9E2D51, 0x85EBCA6B, 0xC2B2AE35):
            mixed = _mix(right * _GOLDEN + (keys + np.uint64(round_key))) & mask
            left, right = right, left ^ mixed
    return (left << half) | right
