"""A StreamingDataset's device batches as the items of an IterableDataset.

A DataLoader over per-sample dicts spends most of its time in Python: one dict per sample in
the worker, then ``default_collate`` stacking them again. When every column is fixed-size
(token arrays, labels), the shard bytes of a whole batch are one gathered block and each
column one ``view`` of it, so ``DataLoader(BatchesView(dataset), batch_size=None)`` yields
the same tensors in the same order as ``DataLoader(dataset, batch_size=B)`` several times
faster. The order is the dataset's: workers take whole device batches round-robin, exactly as
a DataLoader collects them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from torch.utils.data import IterableDataset

from streaming_lightning.dataset.streaming_dataset import StreamingDataset
from streaming_lightning.errors import ConfigError


class BatchesView(IterableDataset):  # type: ignore[type-arg]
    """Iterate ``dataset`` in device batches of ``dataset.batch_size`` (see module doc)."""

    def __init__(self, dataset: StreamingDataset) -> None:
        if not dataset.batch_size:
            raise ConfigError(
                "BatchesView needs the dataset's batch_size (the per-device batch size)."
            )
        if not dataset.batchable:
            raise ConfigError(
                "BatchesView needs every column fixed-size and stackable; iterate the dataset "
                "with a regular DataLoader instead."
            )
        self.dataset = dataset

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self.dataset.iter_batches()

    def __len__(self) -> int:
        """Batches per rank and epoch (each rank's sample count is whole batches)."""
        assert self.dataset.batch_size
        return -(-len(self.dataset) // self.dataset.batch_size)
