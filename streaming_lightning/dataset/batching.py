"""How streams share batches (``batching_method``), as plans over global positions that return
real sample ids. All are pure functions of (data, seed, epoch, batch sizes), so elastic
determinism and exact resume hold for each of them.

- ``random``: one plan over every stream's samples; batches mix streams freely.
- ``stratified``: every global batch holds each stream's share of the batch (its proportion of
  the epoch, largest remainders rounded up).
- ``per_stream``: every global batch comes from a single stream; batches of different streams
  are interleaved in a seeded random order.
- ``device_per_stream``: every device batch comes from a single stream (the unit is the device
  batch, so this one depends on the per-device batch size, by definition).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from streaming_lightning.dataset.plan import Dealing, EpochPlan
from streaming_lightning.dataset.sample_space import EpochSpace
from streaming_lightning.errors import ConfigError

BATCHING_METHODS = ("random", "stratified", "per_stream", "device_per_stream")


class MappedPlan(Dealing):
    """An epoch plan over a virtual sample space, answering in real sample ids."""

    def __init__(self, plan: EpochPlan, space: EpochSpace) -> None:
        self.plan, self.space = plan, space
        self.global_batch = plan.global_batch  # type: ignore[misc]
        self.padded_samples = plan.padded_samples  # type: ignore[misc]

    def ids(self, positions: NDArray[np.int64]) -> NDArray[np.int64]:
        return self.space.real(self.plan.ids(positions))


class UnitPlan(Dealing):
    """``per_stream`` (unit = global batch) and ``device_per_stream`` (unit = device batch):
    the epoch is a random sequence of units, each drawn whole from one stream's own plan."""

    def __init__(
        self, streams: list[MappedPlan], unit: int, global_batch: int, seed: int, epoch: int
    ) -> None:
        self.streams, self.unit = streams, unit
        self.global_batch = global_batch  # type: ignore[misc]
        units = np.concatenate(
            [np.full(p.padded_samples // unit, s, np.int64) for s, p in enumerate(streams)]
        )
        units = units[np.random.default_rng([seed, epoch, 0xBA7C4]).permutation(len(units))]
        per_batch = global_batch // unit
        padding = -len(units) % per_batch  # whole global batches: repeat the first units
        self.labels = np.concatenate([units, units[:padding]])
        local = np.zeros(len(units), np.int64)
        for s in range(len(streams)):
            mask = units == s
            local[mask] = np.arange(int(mask.sum()))
        self.local = np.concatenate([local, local[:padding]])
        self.padded_samples = len(self.labels) * unit  # type: ignore[misc]

    def ids(self, positions: NDArray[np.int64]) -> NDArray[np.int64]:
        positions = np.asarray(positions, np.int64)
        unit, offset = np.divmod(positions, self.unit)
        labels, within = self.labels[unit], self.local[unit] * self.unit + offset
        out = np.empty(len(positions), np.int64)
        for s in np.unique(labels).tolist():
            mask = labels == s
            out[mask] = self.streams[s].ids(within[mask])
        return out


class StratifiedPlan(Dealing):
    """Every global batch: ``quotas[s]`` consecutive slots for stream ``s``, from its own plan."""

    def __init__(self, streams: list[MappedPlan], quotas: list[int], global_batch: int) -> None:
        self.streams, self.quotas = streams, quotas
        self.global_batch = global_batch  # type: ignore[misc]
        self.edges = np.concatenate([[0], np.cumsum(quotas)]).astype(np.int64)
        steps = max(p.padded_samples // q for p, q in zip(streams, quotas))
        self.padded_samples = steps * global_batch  # type: ignore[misc]

    def ids(self, positions: NDArray[np.int64]) -> NDArray[np.int64]:
        positions = np.asarray(positions, np.int64)
        step, slot = np.divmod(positions, self.global_batch)
        stream = np.searchsorted(self.edges, slot, side="right") - 1
        out = np.empty(len(positions), np.int64)
        for s in np.unique(stream).tolist():
            mask = stream == s
            within = step[mask] * self.quotas[s] + slot[mask] - self.edges[s]
            plan = self.streams[s]
            out[mask] = plan.ids(within % plan.padded_samples)  # short streams repeat
        return out


def stratified_quotas(counts: list[int], global_batch: int) -> list[int]:
    """Each stream's slots per global batch, proportional to its samples per epoch."""
    total = sum(counts)
    exact = np.array(counts, np.float64) * global_batch / total
    quotas = np.floor(exact).astype(np.int64)
    quotas[np.argsort(-(exact - quotas), kind="stable")[: global_batch - int(quotas.sum())]] += 1
    if np.any((quotas == 0) & (np.array(counts) > 0)):
        raise ConfigError(
            f"stratified batching needs at least one slot per stream in each global batch; the "
            f"global batch of {global_batch} is too small for streams of {counts} samples."
        )
    return quotas.tolist()
