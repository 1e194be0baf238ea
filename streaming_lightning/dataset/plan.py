"""The epoch plan: which sample id sits at each global position, and which positions a given
rank and worker read. Pure functions of (sample space, canonical nodes, seed, epoch, global
batch, algorithm) — never of the world size or worker count — so the sequence of global
batches is the same on 1 GPU or 64, with any number of DataLoader workers.

Layout of an epoch::

    global position j = step * G + i          (G = global batch size, i in [0, G))
    rank r reads positions step * G + [r * B, (r + 1) * B)  with B = G / world_size

Positions are dealt to canonical-node parts by a fixed slot pattern that repeats every
``period`` steps: position ``p`` of the period belongs to part ``p * NCN // (period * G)``. With
physical nodes dividing NCN, node ``n``'s ranks read only node ``n``'s parts (cache locality);
otherwise locality is weaker but the order is unchanged. Each part gets the same number of
slots per period; the epoch has the fewest steps that give every part a slot for each of its
samples, and the spare slots repeat the part's own first samples (the only padding: every
sample appears at least once, every rank gets the same number of full batches).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from streaming_lightning.dataset.shuffle import PartLayout, get_algorithm, make_layout
from streaming_lightning.errors import ConfigError

#: Memory the cached plan segments of one process may use (ids of upcoming samples).
_SEGMENT_BUDGET_BYTES = 256 << 20


@dataclass(frozen=True)
class PlanSpec:
    """Everything the order of an epoch depends on (and nothing else)."""

    shard_sizes: tuple[int, ...]
    num_canonical_nodes: int
    global_batch: int
    seed: int
    epoch: int
    algorithm: str  # "none" when shuffle=False
    block_size: int


class Dealing(ABC):
    """Who reads what, given a global order of ``padded_samples`` positions in full global
    batches of ``global_batch``: rank r reads slice r of every global batch; DataLoader workers
    take the rank's batches round-robin (the order a DataLoader collects them in)."""

    global_batch: int
    padded_samples: int

    @abstractmethod
    def ids(self, positions: NDArray[np.int64]) -> NDArray[np.int64]:
        """Real sample ids at the given global positions."""

    # -------------------------------------------------------------------- who reads what

    def rank_positions(
        self, rank: int, world_size: int, start: int, stop: int | None = None
    ) -> NDArray[np.int64]:
        """Global positions rank ``rank`` reads among positions [start, stop), in order."""
        g = self.global_batch
        if g % world_size:
            raise ConfigError(
                f"The global batch size {g} is not divisible by the world size {world_size}."
            )
        device = g // world_size
        stop = self.padded_samples if stop is None else min(stop, self.padded_samples)
        first_step, last_step = start // g, -(-stop // g)
        steps = np.arange(first_step, last_step, dtype=np.int64)
        positions = (steps[:, None] * g + rank * device + np.arange(device)).ravel()
        return positions[(positions >= start) & (positions < stop)]

    def worker_batches(
        self,
        rank: int,
        world_size: int,
        worker: int,
        num_workers: int,
        start: int,
        batch: int | None = None,
    ) -> list[NDArray[np.int64]]:
        """The device batches (global positions) worker ``worker`` of ``rank`` produces after
        ``start`` samples of the epoch were consumed. Workers take the rank's batches
        round-robin, which is the order a DataLoader collects them in."""
        return list(self.worker_chunks(rank, world_size, worker, num_workers, start, 1, batch))

    def worker_chunks(
        self,
        rank: int,
        world_size: int,
        worker: int,
        num_workers: int,
        start: int,
        batches_per_chunk: int,
        batch: int | None = None,
    ) -> Iterator[NDArray[np.int64]]:
        """Lazily, the positions of this worker's batches, ``batches_per_chunk`` at a time.

        The rank's remaining positions are cut into device batches of ``batch`` positions
        (default: its share of a step, ``global_batch / world_size``) from ``start`` on (a
        resume inside a step makes every batch straddle two steps by the same offset); batch
        ``b`` belongs to worker ``b % num_workers``, and only the rank's last batch may be
        short. Nothing is materialised for the whole epoch.
        """
        g = self.global_batch
        if g % world_size:
            raise ConfigError(
                f"The global batch size {g} is not divisible by the world size {world_size}."
            )
        share = g // world_size
        unit = share if batch is None else batch
        padded = self.padded_samples
        first_step = start // g
        # Positions of the first step already consumed within this rank's slice.
        skipped = int(np.clip(start - first_step * g - rank * share, 0, share))
        remaining = (padded // g - first_step) * share - skipped
        total_batches = -(-remaining // unit) if remaining > 0 else 0
        mine = np.arange(worker, total_batches, num_workers, dtype=np.int64)
        for i in range(0, len(mine), batches_per_chunk):
            batches = mine[i : i + batches_per_chunk]
            j = (batches[:, None] * unit + np.arange(unit)).ravel()
            j = j[j < remaining]
            shifted = j + skipped
            yield (first_step + shifted // share) * g + rank * share + shifted % share


@dataclass
class EpochPlan(Dealing):
    spec: PlanSpec
    layout: PartLayout = field(init=False)
    period: int = field(init=False)
    slot_part: NDArray[np.int64] = field(init=False)
    slot_index: NDArray[np.int64] = field(init=False)
    slots_per_period: int = field(init=False)
    steps: int = field(init=False)

    def __post_init__(self) -> None:
        spec = self.spec
        if spec.global_batch < 1 or spec.num_canonical_nodes < 1:
            raise ConfigError("global batch size and num_canonical_nodes must be positive.")
        sizes = np.asarray(spec.shard_sizes, np.int64)
        num_samples = int(sizes.sum())
        if num_samples == 0:
            raise ConfigError("The dataset has no samples.")
        if spec.num_canonical_nodes > num_samples:
            raise ConfigError(
                f"num_canonical_nodes={spec.num_canonical_nodes} exceeds the {num_samples} samples "
                "of the dataset; lower it."
            )
        self._algorithm = get_algorithm(spec.algorithm)
        self.layout = make_layout(
            sizes,
            spec.num_canonical_nodes,
            spec.seed,
            spec.epoch,
            shuffled=spec.algorithm != "none",
        )
        ncn, g = spec.num_canonical_nodes, spec.global_batch
        self.period = ncn // math.gcd(g, ncn)
        period_len = self.period * g
        self.slot_part = (np.arange(period_len, dtype=np.int64) * ncn) // period_len
        self.slots_per_period = period_len // ncn
        self.slot_index = (
            np.arange(period_len, dtype=np.int64) - self.slot_part * self.slots_per_period
        )
        self.steps = self._count_steps()
        self._segments: dict[int, tuple[int, NDArray[np.int64]]] = {}
        self._id_dtype = np.int32 if self.num_samples < (1 << 31) else np.int64

    @property
    def num_samples(self) -> int:
        """Samples in the epoch before padding."""
        return int(self.layout.part_sizes.sum())

    @property
    def padded_samples(self) -> int:  # type: ignore[override]
        return self.steps * self.spec.global_batch

    @property
    def global_batch(self) -> int:  # type: ignore[override]
        return self.spec.global_batch

    def _slots_in(self, positions: int) -> NDArray[np.int64]:
        """How many of the first ``positions`` global positions each part owns."""
        period_len = len(self.slot_part)
        full, rest = divmod(positions, period_len)
        counts = np.full(self.spec.num_canonical_nodes, full * self.slots_per_period, np.int64)
        counts += np.bincount(self.slot_part[:rest], minlength=self.spec.num_canonical_nodes)
        return counts

    def _count_steps(self) -> int:
        g = self.spec.global_batch
        need = self.layout.part_sizes
        steps = max(1, -(-int(need.max()) * self.spec.num_canonical_nodes // g))
        steps = max(1, -(-self.num_samples // g), steps - self.period)
        while np.any(self._slots_in(steps * g) < need):
            steps += 1
        return steps

    def part_positions(
        self, positions: NDArray[np.int64]
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """(part, position within part) of global positions (padding wraps within the part)."""
        period_len = len(self.slot_part)
        cycle, offset = np.divmod(positions, period_len)
        parts = self.slot_part[offset]
        within = cycle * self.slots_per_period + self.slot_index[offset]
        return parts, within % self.layout.part_sizes[parts]

    def ids(self, positions: NDArray[np.int64]) -> NDArray[np.int64]:
        """Sample ids at the given global positions (any order, any subset)."""
        positions = np.asarray(positions, np.int64)
        out = np.empty(len(positions), np.int64)
        if not len(positions):
            return out
        if positions.min() < 0 or positions.max() >= self.padded_samples:
            raise IndexError(f"positions outside the epoch of {self.padded_samples} samples")
        parts, within = self.part_positions(positions)
        for part in np.unique(parts).tolist():
            mask = parts == part
            out[mask] = self._part_ids(part, within[mask])
        return out

    def _part_ids(self, part: int, local: NDArray[np.int64]) -> NDArray[np.int64]:
        """Ids at part positions ``local``, computed in segments that are cached: consecutive
        requests (a worker walking its batches) reuse one computation instead of redoing the
        shuffle window for every chunk."""
        lo, hi = int(local.min()), int(local.max()) + 1
        segment = self._segments.get(part)
        if segment is None or lo < segment[0] or hi > segment[0] + len(segment[1]):
            size = int(self.layout.part_sizes[part])
            # Start small (fast first batch, fast resume) and double up to the cap, so a long
            # walk through the part amortises each shuffle window over many samples.
            previous = len(segment[1]) if segment is not None else 0
            grown = max(1 << 15, 2 * previous)
            length = max(hi - lo, min(grown, self._segment_length(size)))
            seg_lo = lo if lo + length <= size else max(0, size - length)
            seg_hi = min(size, seg_lo + max(length, hi - seg_lo))
            spec = self.spec
            ids = self._algorithm(
                self.layout, part, seg_lo, seg_hi, spec.seed, spec.epoch, spec.block_size
            )
            segment = (seg_lo, ids.astype(self._id_dtype))
            self._segments[part] = segment
        return segment[1][local - segment[0]].astype(np.int64)

    def _segment_length(self, part_size: int) -> int:
        """Segment per part: the whole part when affordable, else a few shuffle windows, within
        a memory budget shared by all parts."""
        budget = _SEGMENT_BUDGET_BYTES // (
            np.dtype(self._id_dtype).itemsize * self.spec.num_canonical_nodes
        )
        wanted = max(4 * self.spec.block_size, 1 << 16)
        return int(min(part_size, max(wanted if wanted <= budget else budget, 1 << 14)))


class RebasedPlan(Dealing):
    """The rest of an epoch after ``start`` positions of ``base``, dealt in a different global
    batch size: resuming a checkpoint on a world that changed the global batch. Positions here
    map to ``start + position`` of the base plan, so a later checkpoint is still expressed in
    the base plan's coordinates; the tail is padded to whole batches from the rest itself."""

    def __init__(self, base: Dealing, start: int, global_batch: int) -> None:
        if not 0 <= start < base.padded_samples:
            raise ConfigError(
                f"Resume point {start} is outside the epoch of {base.padded_samples} samples."
            )
        self.base, self.start = base, start
        self.remaining = base.padded_samples - start
        self.global_batch = global_batch  # type: ignore[misc]
        self.steps = -(-self.remaining // global_batch)
        self.padded_samples = self.steps * global_batch  # type: ignore[misc]

    def ids(self, positions: NDArray[np.int64]) -> NDArray[np.int64]:
        positions = np.asarray(positions, np.int64)
        return self.base.ids(self.start + positions % self.remaining)
