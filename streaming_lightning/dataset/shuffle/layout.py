"""The epoch's arrangement of shards into canonical-node parts — small arrays, one entry per
span, cheap to compute for any number of samples.

Shard order is drawn once per run (``seed``), so a canonical node keeps the same shards every
epoch (its cache stays warm); the order of spans inside each part is redrawn every epoch.
Shards that straddle a part boundary are split there. Parts are equal (±1 sample) contiguous
slices of the shard-ordered samples, as in mosaicml-streaming.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class PartLayout:
    """Spans in epoch order. Span ``s`` holds sample ids ``starts[s] .. starts[s]+lengths[s]``
    and occupies positions ``offsets[s] ..`` of canonical part ``parts[s]``."""

    starts: NDArray[np.int64]
    lengths: NDArray[np.int64]
    parts: NDArray[np.int64]
    offsets: NDArray[np.int64]
    part_sizes: NDArray[np.int64]

    @property
    def num_parts(self) -> int:
        return len(self.part_sizes)

    def part_spans(self, part: int) -> tuple[int, int]:
        """Index range of the spans of ``part``."""
        lo = int(np.searchsorted(self.parts, part, side="left"))
        hi = int(np.searchsorted(self.parts, part, side="right"))
        return lo, hi

    def ids_at(self, part: int, lo: int, hi: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Sample ids at part positions [lo, hi) before any within-span shuffle, and the span
        index of each."""
        first, last = self.part_spans(part)
        offsets = self.offsets[first:last]
        s_lo = first + max(0, int(np.searchsorted(offsets, lo, side="right")) - 1)
        s_hi = first + int(np.searchsorted(offsets, hi, side="left"))
        spans = np.arange(s_lo, max(s_lo, s_hi), dtype=np.int64)
        begin = np.maximum(self.offsets[spans], lo)
        end = np.minimum(self.offsets[spans] + self.lengths[spans], hi)
        counts = np.maximum(end - begin, 0)
        which = np.repeat(spans, counts)
        positions = np.arange(lo, lo + int(counts.sum()), dtype=np.int64)
        return self.starts[which] + (positions - self.offsets[which]), which


def make_layout(
    shard_sizes: NDArray[np.int64], num_parts: int, seed: int, epoch: int, *, shuffled: bool = True
) -> PartLayout:
    """Spans for this epoch; ``shuffled=False`` keeps storage order (for ``shuffle=False``)."""
    sizes = np.asarray(shard_sizes, np.int64)
    shard_first = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    order = (
        np.random.default_rng(seed).permutation(len(sizes)) if shuffled else np.arange(len(sizes))
    )
    ordered_first, ordered_sizes = shard_first[order], sizes[order]
    ends = np.cumsum(ordered_sizes)
    total = int(ends[-1]) if len(ends) else 0
    bounds = (np.arange(num_parts + 1, dtype=np.int64) * total) // num_parts
    edges = np.unique(np.concatenate([[0], ends, bounds]))
    lefts, lengths = edges[:-1], np.diff(edges)
    keep = lengths > 0
    lefts, lengths = lefts[keep], lengths[keep]
    shard = np.searchsorted(ends, lefts, side="right")
    starts = ordered_first[shard] + (lefts - (ends - ordered_sizes)[shard])
    parts = np.searchsorted(bounds, lefts, side="right") - 1
    # Re-order spans inside each part for this epoch.
    tiebreak = (
        np.random.default_rng([seed, epoch]).random(len(lefts))
        if shuffled
        else np.arange(len(lefts))
    )
    order = np.lexsort((tiebreak, parts))
    starts, lengths, parts = starts[order], lengths[order], parts[order]
    part_sizes = np.diff(bounds)
    part_first = np.concatenate([[0], np.cumsum(part_sizes)[:-1]])
    offsets = np.cumsum(lengths) - lengths - part_first[parts]
    return PartLayout(starts, lengths, parts, offsets.astype(np.int64), part_sizes.astype(np.int64))
