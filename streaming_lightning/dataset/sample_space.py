"""The epoch's sample space: which samples of which streams an epoch draws, as "virtual shards"
the shuffle arranges, plus the map from virtual to real sample ids.

A stream drawn ``c`` times its size ``n`` per epoch contributes ``c // n`` full copies of its
shards and a random subset of ``c % n`` samples — redrawn every epoch with
``sampling_method='balanced'``, the same every epoch with ``'fixed'`` — taken in groups of
``sampling_granularity`` consecutive samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from streaming_lightning.errors import ConfigError


@dataclass(frozen=True)
class EpochSpace:
    shard_sizes: NDArray[np.int64]
    to_real: NDArray[np.int64] | None  # None: virtual ids are real ids

    def real(self, ids: NDArray[np.int64]) -> NDArray[np.int64]:
        return ids if self.to_real is None else self.to_real[ids]


def samples_per_stream(
    sizes: list[int],
    *,
    proportions: list[float | None],
    repeats: list[float | None],
    chooses: list[int | None],
    epoch_size: int | None,
) -> list[int]:
    """How many samples each stream contributes per epoch."""
    if any(p is not None for p in proportions):
        if any(p is None for p in proportions):
            raise ConfigError("If one stream has a proportion, every stream needs one.")
        total = epoch_size or sum(sizes)
        weights = np.array([float(p or 0) for p in proportions], np.float64)
        weights /= weights.sum()
        exact = weights * total
        counts = np.floor(exact).astype(np.int64)
        remainder = total - int(counts.sum())
        counts[np.argsort(-(exact - counts), kind="stable")[:remainder]] += 1
        return counts.tolist()
    counts_list = []
    for size, repeat, choose in zip(sizes, repeats, chooses):
        if choose is not None:
            counts_list.append(int(choose))
        elif repeat is not None:
            counts_list.append(round(repeat * size))
        else:
            counts_list.append(size)
    if epoch_size is not None:
        scale = epoch_size / max(1, sum(counts_list))
        exact = np.array(counts_list, np.float64) * scale
        counts = np.floor(exact).astype(np.int64)
        counts[np.argsort(-(exact - counts), kind="stable")[: epoch_size - int(counts.sum())]] += 1
        counts_list = counts.tolist()
    return [int(c) for c in counts_list]


def stream_space(
    shard_sizes: NDArray[np.int64],
    count: int,
    *,
    index: int,
    offset: int,
    seed: int,
    epoch: int,
    sampling_method: str,
    granularity: int,
) -> tuple[list[NDArray[np.int64]], list[NDArray[np.int64]]]:
    """Virtual shards and real ids of stream ``index`` (whose samples start at ``offset``)."""
    size = int(shard_sizes.sum())
    if size == 0 and count:
        raise ConfigError(f"Stream {index} is empty but must contribute {count} samples.")
    full, rest = divmod(count, size) if size else (0, 0)
    virtual_sizes = [shard_sizes] * full
    mapping = [np.arange(offset, offset + size, dtype=np.int64)] * full
    if rest:
        key = [seed, index, epoch] if sampling_method == "balanced" else [seed, index]
        rng = np.random.default_rng(key)
        groups = -(-size // granularity)
        picked = np.sort(rng.choice(groups, -(-rest // granularity), replace=False))
        chosen = (picked[:, None] * granularity + np.arange(granularity)).ravel()
        chosen = chosen[chosen < size][:rest]
        shard_of = np.searchsorted(np.cumsum(shard_sizes), chosen, side="right")
        virtual_sizes.append(np.bincount(shard_of, minlength=len(shard_sizes)).astype(np.int64))
        mapping.append(chosen + offset)
    return virtual_sizes, mapping


def build_space(
    stream_shard_sizes: list[NDArray[np.int64]],
    counts: list[int],
    *,
    seed: int,
    epoch: int,
    sampling_method: str,
    granularity: int,
    streams: list[int] | None = None,
) -> EpochSpace:
    """The epoch space of the given streams (default: all of them, in order)."""
    sizes = [int(s.sum()) for s in stream_shard_sizes]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    chosen = list(range(len(sizes))) if streams is None else streams
    if streams is None and counts == sizes:
        return EpochSpace(np.concatenate(stream_shard_sizes).astype(np.int64), None)
    virtual_sizes: list[NDArray[np.int64]] = []
    mapping: list[NDArray[np.int64]] = []
    for index in chosen:
        shards, ids = stream_space(
            stream_shard_sizes[index],
            counts[index],
            index=index,
            offset=int(offsets[index]),
            seed=seed,
            epoch=epoch,
            sampling_method=sampling_method,
            granularity=granularity,
        )
        virtual_sizes += shards
        mapping += ids
    if not virtual_sizes:
        return EpochSpace(np.zeros(0, np.int64), np.zeros(0, np.int64))
    return EpochSpace(np.concatenate(virtual_sizes).astype(np.int64), np.concatenate(mapping))
