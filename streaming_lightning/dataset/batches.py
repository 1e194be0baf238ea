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

import torch
from torch.utils.data import DataLoader, IterableDataset

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


def keep_numpy(batch: Any) -> Any:
    """Worker-side collate for :class:`BatchesLoader`: leave the arrays as numpy."""
    return batch


def to_tensors(batch: dict[str, Any], pin_memory: bool = False) -> dict[str, torch.Tensor]:
    """Main-process side: wrap each array as a tensor without copying (pinned on request)."""
    out = {name: torch.from_numpy(array) for name, array in batch.items()}
    if pin_memory and torch.cuda.is_available():
        out = {name: tensor.pin_memory() for name, tensor in out.items()}
    return out


class BatchesLoader(DataLoader):  # type: ignore[type-arg]
    """A DataLoader over :class:`BatchesView`: the batches ``DataLoader(dataset,
    batch_size=dataset.batch_size)`` would give, several times faster.

    Batches cross from workers as pickled numpy arrays and become tensors in the main
    process. For batches of tens of KB (token ids, labels) that is about 3x faster than
    torch's shared-memory tensor hand-off, which pays a segment, a descriptor and two maps
    per tensor. Pinning happens in the main process when ``pin_memory=True``.
    """

    def __init__(self, dataset: StreamingDataset, **kwargs: Any) -> None:
        for fixed in ("batch_size", "collate_fn", "sampler", "batch_sampler", "shuffle"):
            if kwargs.get(fixed) not in (None, False):
                raise ConfigError(
                    f"BatchesLoader sets {fixed} itself (batches are the dataset's "
                    f"batch_size={dataset.batch_size}); do not pass it."
                )
            kwargs.pop(fixed, None)
        self._pin = bool(kwargs.pop("pin_memory", False))
        super().__init__(BatchesView(dataset), batch_size=None, collate_fn=keep_numpy, **kwargs)
        self.streaming_dataset = dataset

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:  # type: ignore[override]
        for batch in super().__iter__():
            yield to_tensors(batch, self._pin)
