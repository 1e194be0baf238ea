"""Shuffling, split into a cheap per-epoch layout (:mod:`.layout`: which spans of which shards
form each canonical-node part, in what order) and per-slice algorithms (:mod:`.algorithms`:
which ids sit at positions [lo, hi) of a part). Randomness comes from counter-based hashes
(:mod:`.keys`) so any slice can be computed without the ones before it."""

from __future__ import annotations

from streaming_lightning.dataset.shuffle.algorithms import ALGORITHMS, PartIds
from streaming_lightning.dataset.shuffle.layout import PartLayout, make_layout
from streaming_lightning.dataset.shuffle.quality import ShuffleQuality, shuffle_quality
from streaming_lightning.errors import ConfigError

SHUFFLE_ALGORITHMS = sorted(set(ALGORITHMS) - {"none"})


def default_block_size(num_canonical_nodes: int | None) -> int:
    """mosaicml-streaming's default: max(4_000_000 // num_canonical_nodes, 2**18)."""
    return max(4_000_000 // num_canonical_nodes, 1 << 18) if num_canonical_nodes else 1 << 18


def get_algorithm(name: str) -> PartIds:
    algorithm = ALGORITHMS.get(name)
    if algorithm is None:
        raise ConfigError(f"Unknown shuffle_algo {name!r}; choose one of {SHUFFLE_ALGORITHMS}.")
    return algorithm


__all__ = [
    "SHUFFLE_ALGORITHMS",
    "PartIds",
    "PartLayout",
    "ShuffleQuality",
    "default_block_size",
    "get_algorithm",
    "make_layout",
    "shuffle_quality",
]
