"""The shuffle algorithms. Each answers one question: which sample ids sit at positions
``[lo, hi)`` of canonical part ``part`` this epoch? Answering for a slice costs about the size
of the slice (plus a window for ``py1e``), never the whole epoch.

- ``none``: storage order (``shuffle=False``).
- ``naive``: a uniform permutation of each part. Best mixing; a reader touches every shard.
- ``py1s``: shards in random order, samples shuffled within each shard. Most local.
- ``py1b`` / ``py1br``: samples shuffled within blocks of ``block_size`` (py1br: random sizes
  between 0.75x and 1.25x) of the shard-ordered part.
- ``py1e`` (default): py1s, then each sample moved by a random offset within a window of about
  ``block_size`` centred on its shard, so neighbouring shards interleave gradually.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from streaming_lightning.dataset.shuffle.keys import integers, permute_within, stream_key, uniform
from streaming_lightning.dataset.shuffle.layout import PartLayout

# Purposes, folded into the hash keys so different uses draw independent numbers.
_WITHIN_SPAN, _BLOCKS, _WINDOW, _SHIFT, _NAIVE = 1, 2, 3, 4, 5

PartIds = Callable[[PartLayout, int, int, int, int, int, int], NDArray[np.int64]]


def ids_none(
    layout: PartLayout, part: int, lo: int, hi: int, seed: int, epoch: int, block: int
) -> NDArray[np.int64]:
    return layout.ids_at(part, lo, hi)[0]


def _span_bounds(layout: PartLayout, part: int, lo: int, hi: int) -> tuple[int, int]:
    """Extend [lo, hi) to whole spans."""
    first, last = layout.part_spans(part)
    offsets = layout.offsets[first:last]
    ends = offsets + layout.lengths[first:last]
    s_lo = max(0, int(np.searchsorted(offsets, lo, side="right")) - 1)
    s_hi = int(np.searchsorted(offsets, hi, side="left"))
    return int(offsets[s_lo]), int(ends[max(s_lo, s_hi - 1)])


def ids_py1s(
    layout: PartLayout, part: int, lo: int, hi: int, seed: int, epoch: int, block: int
) -> NDArray[np.int64]:
    if hi <= lo:
        return np.empty(0, np.int64)
    ids, spans = layout.ids_at(part, lo, hi)
    if not len(ids):
        return ids
    # ids_at yields consecutive spans, so span - first span indexes the per-span arrays. The
    # sample at span offset i is the span's sample perm(i), perm keyed by the span's first
    # sample id (stable whatever slice is being computed).
    span_range = np.arange(int(spans[0]), int(spans[-1]) + 1)
    first = layout.starts[spans]
    return first + permute_within(
        stream_key(seed, epoch, _WITHIN_SPAN),
        layout.starts[span_range],
        layout.lengths[span_range],
        spans - int(spans[0]),
        ids - first,
    )


def _shuffle_blocks(
    layout: PartLayout,
    part: int,
    lo: int,
    hi: int,
    bounds: NDArray[np.int64],
    seed: int,
    epoch: int,
) -> NDArray[np.int64]:
    b_lo = int(np.searchsorted(bounds, lo, side="right")) - 1
    b_hi = int(np.searchsorted(bounds, hi, side="left"))
    ext_lo, ext_hi = int(bounds[b_lo]), int(bounds[b_hi])
    ids, _ = layout.ids_at(part, ext_lo, ext_hi)
    labels = np.searchsorted(bounds, np.arange(ext_lo, ext_hi), side="right")
    keys = uniform(stream_key(seed, epoch, _BLOCKS, part), ids)
    return ids[np.lexsort((keys, labels))][lo - ext_lo : hi - ext_lo]


def ids_py1b(
    layout: PartLayout, part: int, lo: int, hi: int, seed: int, epoch: int, block: int
) -> NDArray[np.int64]:
    if hi <= lo:
        return np.empty(0, np.int64)
    size = int(layout.part_sizes[part])
    bounds = np.append(np.arange(0, size, max(1, block), dtype=np.int64), size)
    return _shuffle_blocks(layout, part, lo, hi, bounds, seed, epoch)


@functools.lru_cache(maxsize=256)
def _random_block_bounds(size: int, block: int, key: int) -> NDArray[np.int64]:
    low, high = max(1, int(0.75 * block)), max(2, int(1.25 * block))
    widths = integers(key, np.arange(size // low + 2, dtype=np.int64), low, high)
    edges = np.concatenate([[0], np.cumsum(widths)])
    edges = edges[edges < size]
    return np.append(edges, size).astype(np.int64)


def ids_py1br(
    layout: PartLayout, part: int, lo: int, hi: int, seed: int, epoch: int, block: int
) -> NDArray[np.int64]:
    if hi <= lo:
        return np.empty(0, np.int64)
    bounds = _random_block_bounds(
        int(layout.part_sizes[part]), block, stream_key(seed, epoch, _BLOCKS, part, 1)
    )
    return _shuffle_blocks(layout, part, lo, hi, bounds, seed, epoch)


def ids_py1e(
    layout: PartLayout, part: int, lo: int, hi: int, seed: int, epoch: int, block: int
) -> NDArray[np.int64]:
    if hi <= lo:
        return np.empty(0, np.int64)
    size = int(layout.part_sizes[part])
    low, high = max(1, int(0.75 * block)), max(2, int(1.25 * block))
    reach = (high + 1) // 2 + 1  # no sample moves further than this
    # Every sample that can land in [lo, hi) starts within 2*reach of it; samples starting
    # before the window all end up before everything we return (see the plan's docstring).
    win_lo, win_hi = max(0, lo - 2 * reach), min(size, hi + 2 * reach)
    raw_ids, spans = layout.ids_at(part, win_lo, win_hi)
    span_range = np.arange(int(spans[0]), int(spans[-1]) + 1)
    local = spans - int(spans[0])
    lengths, offsets = layout.lengths[span_range], layout.offsets[span_range]
    windows = integers(stream_key(seed, epoch, _WINDOW), span_range, low, high)
    cutoff = np.maximum((windows - lengths) / 2.0, 0.0)
    shift_lo = np.maximum(-cutoff, -offsets)
    shift_width = np.minimum(cutoff, size - offsets - lengths) - shift_lo
    positions = np.arange(win_lo, win_hi, dtype=np.float64) + shift_lo[local]
    positions += shift_width[local] * uniform(
        stream_key(seed, epoch, _SHIFT, part), np.arange(win_lo, win_hi)
    )
    # Ranks [k_lo, k_hi) of the window are the answer. Select them in O(window) and sort only
    # them, so a small slice (the first batch, a resume point) costs far less than the window.
    k_lo, k_hi = lo - win_lo, hi - win_lo
    if k_lo > 0 or k_hi < len(positions):
        kth = sorted({k for k in (k_lo, k_hi - 1) if 0 <= k < len(positions)})
        chosen = np.argpartition(positions, kth)[k_lo:k_hi]
    else:
        chosen = np.arange(len(positions))
    chosen = chosen[np.argsort(positions[chosen], kind="stable")]
    # Only the returned samples need their within-shard permutation (same as py1s computes).
    group = local[chosen]
    first = layout.starts[span_range][group]
    return first + permute_within(
        stream_key(seed, epoch, _WITHIN_SPAN),
        layout.starts[span_range],
        lengths,
        group,
        raw_ids[chosen] - first,
    )


@functools.lru_cache(maxsize=64)
def _naive_permutation(size: int, seed: int, epoch: int, part: int) -> NDArray[np.int64]:
    return np.random.default_rng([seed, epoch, part, _NAIVE]).permutation(size).astype(np.int64)


def ids_naive(
    layout: PartLayout, part: int, lo: int, hi: int, seed: int, epoch: int, block: int
) -> NDArray[np.int64]:
    positions = _naive_permutation(int(layout.part_sizes[part]), seed, epoch, part)[lo:hi]
    if len(positions) == 0:
        return np.empty(0, np.int64)
    p_lo, p_hi = int(positions.min()), int(positions.max()) + 1
    ids, _ = layout.ids_at(part, p_lo, p_hi)
    return ids[positions - p_lo]


ALGORITHMS: dict[str, PartIds] = {
    "none": ids_none,
    "naive": ids_naive,
    "py1s": ids_py1s,
    "py1b": ids_py1b,
    "py1br": ids_py1br,
    "py1e": ids_py1e,
}
