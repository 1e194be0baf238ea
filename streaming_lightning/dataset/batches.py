"""A StreamingDataset's device batches as the items of an IterableDataset, and a DataLoader
that moves them between processes cheaply.

A DataLoader over per-sample dicts spends most of its time in Python and in the hand-off
between processes: one dict per sample in the worker, ``default_collate`` stacking them, then
torch's shared-memory transfer of every tensor (a segment, a descriptor and two maps each,
~0.3 ms). ``BatchesLoader`` gives the same batches (``default_collate``'s values, in the same
order) with far less of that:

- fixed-size columns (token arrays, labels) are never per-sample objects: a batch is one
  gathered block of shard bytes, each column a ``view`` of it (``iter_batches``);
- columns that stack (numbers, equal-shape arrays) cross as pickled numpy arrays — for tens of
  KB that is ~3x faster than shared-memory tensors — and become tensors in the main process;
- when every value is stored bytes as they are (raw ``bytes`` such as encoded images, plus
  fixed-size numbers), the worker has nothing to decode: it sends a :class:`BatchPlan` (which
  samples, once their shards are local) and the main process reads them itself — one copy
  from the page cache. Any hand-over of the bytes would cost more than that read: a fresh
  shared-memory segment is written and faulted in twice (~1 ms per MB here), a pipe copies
  them three times. No shared memory, flat worker memory;
- other ``bytes`` columns (a subclass's output) cross as one shared-memory buffer plus
  offsets instead of hundreds of pickled objects through the worker pipe;
- anything else goes through ``default_collate`` in the worker, as usual.

The order is the dataset's: workers take whole device batches round-robin, exactly as a
DataLoader collects them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch.utils.data import DataLoader, IterableDataset, default_collate, get_worker_info

from streaming_lightning.dataset.streaming_dataset import StreamingDataset
from streaming_lightning.errors import ConfigError


@dataclass
class PackedBytes:
    """A column of ``bytes`` values as one buffer (shared memory when it crosses processes)
    and ``len + 1`` offsets."""

    buffer: torch.Tensor
    offsets: np.ndarray

    @classmethod
    def pack(cls, values: list[bytes]) -> PackedBytes:
        sizes = np.fromiter((len(v) for v in values), np.int64, len(values))
        offsets = np.zeros(len(values) + 1, np.int64)
        np.cumsum(sizes, out=offsets[1:])
        # Allocated in shared memory up front: sending it to the main process then copies
        # nothing (torch would otherwise copy it into a new segment on the way out).
        buffer = torch.empty(int(offsets[-1]), dtype=torch.uint8).share_memory_()
        view = buffer.numpy()
        for value, start, end in zip(values, offsets[:-1].tolist(), offsets[1:].tolist()):
            view[start:end] = np.frombuffer(value, np.uint8)
        return cls(buffer, offsets)

    def unpack(self) -> list[bytes]:
        data = self.buffer.numpy().data
        bounds = self.offsets.tolist()
        return [bytes(data[a:b]) for a, b in itertools.pairwise(bounds)]


@dataclass
class BatchPlan:
    """A device batch by position: the (global shard, index within shard) of each sample, in
    order. Sent by a worker instead of the samples when reading them is a plain copy
    (``StreamingDataset.reads_are_copies``); the shards were local when it was sent."""

    shards: NDArray[np.int64]
    within: NDArray[np.int64]


def pack_column(values: list[Any], shared: bool = True) -> Any:
    """One column of a batch in the cheapest form to send (see module doc); ``shared=False``
    when it stays in this process (no shared memory then)."""
    first = values[0]
    kind = type(first)
    if not all(type(v) is kind for v in values):
        return default_collate(values)
    if kind is bytes:
        return PackedBytes.pack(values) if shared else values
    if kind is int:
        return np.array(values, np.int64)
    if kind is float:
        return np.array(values, np.float64)
    if isinstance(first, np.generic) and not isinstance(first, (np.str_, np.bytes_)):
        return np.array(values, first.dtype)
    if (
        kind is np.ndarray
        and first.dtype.kind in "biufc"
        and all(v.shape == first.shape and v.dtype == first.dtype for v in values)
    ):
        return np.stack(values)
    return default_collate(values)


def unpack_column(value: Any, pin_memory: bool = False) -> Any:
    """Main-process side: what ``default_collate`` would have produced for the column."""
    if isinstance(value, np.ndarray):
        tensor = torch.from_numpy(value)
        return tensor.pin_memory() if pin_memory and torch.cuda.is_available() else tensor
    if isinstance(value, PackedBytes):
        return value.unpack()
    return value


def _pack(samples: list[Any], shared: bool) -> Any:
    """A batch of dict samples column by column; anything else (a subclass's tuples,
    tensors...) through ``default_collate``, exactly as a DataLoader would."""
    if all(type(sample) is dict for sample in samples):
        return {name: pack_column([s[name] for s in samples], shared) for name in samples[0]}
    return default_collate(samples)


def unpack_batch(batch: Any, dataset: StreamingDataset, pin_memory: bool = False) -> Any:
    """Main-process side of a :class:`BatchesView` batch: ``default_collate``'s values, read
    here first when the worker sent a :class:`BatchPlan`."""
    if isinstance(batch, BatchPlan):
        samples = dataset.read_samples(batch.shards, batch.within)
        return {
            name: unpack_column(pack_column([s[name] for s in samples], False), pin_memory)
            for name in samples[0]
        }
    if isinstance(batch, dict):
        return {name: unpack_column(value, pin_memory) for name, value in batch.items()}
    return _pinned(batch) if pin_memory and torch.cuda.is_available() else batch


def _pinned(value: Any) -> Any:
    """``default_collate`` output with every tensor in pinned memory."""
    if isinstance(value, torch.Tensor):
        return value.pin_memory()
    if isinstance(value, dict):
        return {key: _pinned(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_pinned(item) for item in value)  # type: ignore[call-arg]
    return value


class BatchesView(IterableDataset):  # type: ignore[type-arg]
    """Iterate ``dataset`` in device batches of ``dataset.batch_size``, each a dict of packed
    columns or a :class:`BatchPlan` (see module doc; :func:`unpack_batch` turns either into
    collated values) — or, with ``collate``, whatever it makes of each batch's samples."""

    def __init__(
        self, dataset: StreamingDataset, collate: Callable[[list[Any]], Any] | None = None
    ) -> None:
        if not dataset.batch_size:
            raise ConfigError(
                "BatchesView needs the dataset's batch_size (the per-device batch size)."
            )
        self.dataset = dataset
        #: Builds a batch from its samples, in the worker (samples that do not stack, e.g.
        #: detection targets); None: packed columns, default_collate's values.
        self.collate = collate

    def __getattr__(self, name: str) -> Any:
        # Anything else is the dataset's (state_dict, batch_size, ...): code that reaches
        # for ``loader.dataset`` keeps working when the loader iterates this view.
        if name == "dataset":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __iter__(self) -> Iterator[dict[str, Any] | BatchPlan]:
        if self.collate is None and self.dataset.batchable:
            yield from self.dataset.iter_batches()
            return
        if self.collate is None and self.dataset.reads_are_copies:
            for shards, within in self.dataset.iter_batch_plans():
                yield BatchPlan(shards, within)
            return
        size = self.dataset.batch_size
        assert size
        shared = get_worker_info() is not None
        batch: list[Any] = []
        for sample in self.dataset:
            batch.append(sample)
            if len(batch) == size:
                packed = self._collate(batch, shared)
                batch = []  # let the samples go before the consumer holds the packed batch
                yield packed
        if batch:  # the rank's last batch, short only with whole_batches=False
            yield self._collate(batch, shared)

    def _collate(self, samples: list[Any], shared: bool) -> Any:
        return _pack(samples, shared) if self.collate is None else self.collate(samples)

    def __len__(self) -> int:
        """Batches per rank and epoch (the last one short with ``whole_batches=False``)."""
        assert self.dataset.batch_size
        return -(-len(self.dataset) // self.dataset.batch_size)


def keep_packed(batch: Any) -> Any:
    """Worker-side collate for :class:`BatchesLoader`: the batch is already packed."""
    return batch


class BatchesLoader(DataLoader):  # type: ignore[type-arg]
    """``DataLoader(dataset, batch_size=dataset.batch_size)`` — the same batches, faster (see
    the module doc). DataLoader options (num_workers, pin_memory, persistent_workers,
    prefetch_factor, ...) pass through; batching is the dataset's. ``collate_fn``, if given,
    builds each batch from its samples in the workers (for samples that do not stack);
    otherwise batches are packed columns, the values ``default_collate`` gives."""

    #: What the workers iterate; integrations subclass it (e.g. to check resumed states).
    view_class: type[BatchesView] = BatchesView

    def __init__(self, dataset: StreamingDataset, **kwargs: Any) -> None:
        collate = kwargs.pop("collate_fn", None)
        for fixed in ("batch_size", "sampler", "batch_sampler", "shuffle"):
            if kwargs.get(fixed) not in (None, False):
                raise ConfigError(
                    f"{type(self).__name__} sets {fixed} itself (batches are the dataset's "
                    f"batch_size={dataset.batch_size}); do not pass it."
                )
            kwargs.pop(fixed, None)
        self._pin = bool(kwargs.pop("pin_memory", False))
        self.streaming_dataset = dataset
        view = self.view_class(dataset)
        view.collate = collate
        self._custom_collate = collate is not None
        super().__init__(view, batch_size=None, collate_fn=keep_packed, **kwargs)

    def __iter__(self) -> Iterator[dict[str, Any]]:  # type: ignore[override]
        for batch in super().__iter__():
            if self._custom_collate:  # collate_fn's batch, as it made it
                yield _pinned(batch) if self._pin and torch.cuda.is_available() else batch
            else:
                yield unpack_batch(batch, self.streaming_dataset, self._pin)
