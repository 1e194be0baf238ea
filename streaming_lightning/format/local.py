"""LocalDataset: random access over a dataset directory already on local disk.

The simplest way to read shards: no partitioning, no shuffling, no downloading. The streaming
dataset builds on the same readers; this class is for inspection, conversion checks and tests.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from streaming_lightning.format.index import INDEX_BASENAME, load_index
from streaming_lightning.format.reader import ShardReader
from streaming_lightning.format.readers import reader_from_json


class LocalDataset:
    """All samples of ``dirname[/split]``, in shard order, addressable by global index."""

    def __init__(
        self,
        dirname: str,
        split: str | None = None,
        *,
        allow_unsafe_types: bool = False,
        validate_hash: str | None = None,
        keep_zip: bool = True,
    ) -> None:
        self.dirname = dirname
        self.split = split
        root = os.path.join(dirname, split) if split else dirname
        self.index_path = os.path.join(root, INDEX_BASENAME)
        self.shards: list[ShardReader] = [
            reader_from_json(dirname, split, spec, allow_unsafe_types=allow_unsafe_types)
            for spec in load_index(self.index_path)
        ]
        for shard in self.shards:
            shard.prepare(validate_hash=validate_hash, keep_zip=keep_zip)
        sizes = np.array([shard.samples for shard in self.shards], np.int64)
        self.shard_offsets = np.concatenate([[0], np.cumsum(sizes)])
        self.num_samples = int(self.shard_offsets[-1])

    def __len__(self) -> int:
        return self.num_samples

    def locate(self, index: int) -> tuple[int, int]:
        """(shard id, index within shard) of global sample ``index``."""
        if not -self.num_samples <= index < self.num_samples:
            raise IndexError(
                f"Sample {index} out of range for {self.num_samples} samples in {self.index_path}."
            )
        index %= self.num_samples
        shard_id = int(np.searchsorted(self.shard_offsets, index, side="right")) - 1
        return shard_id, index - int(self.shard_offsets[shard_id])

    def __getitem__(self, index: int) -> dict[str, Any]:
        shard_id, local = self.locate(int(index))
        return self.shards[shard_id][local]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for shard in self.shards:
            yield from shard.get_samples(range(shard.samples))

    def close(self) -> None:
        for shard in self.shards:
            shard.close()
