"""StreamingDataLoader: a DataLoader over a StreamingDataset that knows exactly how far the
training loop got, so a checkpoint resumes at the next unseen batch.

Why count here and not in the dataset: DataLoader workers and Lightning's fetcher read ahead, so
a counter inside the dataset runs ahead of the loop. This loader counts the batches it hands out
in the main process. The epoch plan gives every rank the same number of full device batches and
deals global batch ``k`` to the ranks' batch ``k``, so after ``n`` batches on every rank exactly
``n * global_batch`` samples of the epoch are consumed, globally, with no communication between
ranks (``state_dict`` runs where collectives are not allowed).

How an iteration starts (at the first ``next()``, not at ``iter()``, so a position loaded after
the iterator was created still applies, which is what Lightning bug #20550 needs):

- the epoch is the trainer's current epoch when an ``epoch_source`` is attached (the DataModule
  and the callback attach the trainer's), else the one announced through ``set_epoch`` (Lightning
  calls it on every train loader's sampler before each epoch, the DistributedSampler contract),
  else the next one. The trainer's own count is preferred because Lightning's ``set_epoch``
  value lags by one after some restarts (a run resumed twice at the end of a
  ``limit_train_batches`` epoch gets ``set_epoch(1)`` while training epoch 2);
- a loaded position applies if it belongs to that epoch; a position of an earlier epoch means
  the trainer already moved on (a checkpoint taken at the end of an epoch, or after
  ``limit_train_batches`` batches), and the epoch starts at 0;
- DataLoader workers are told the rank's place in the job (a spawned or forkserver worker does
  not inherit torch.distributed), and the plan's canonical nodes are pinned so every process
  deals the same plan.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from torch.utils.data import DataLoader
from torch.utils.data.dataloader import _InfiniteConstantSampler

from streaming_lightning.dataset import StreamingDataset, World, detect_world
from streaming_lightning.dataset.batches import BatchesView, keep_packed, unpack_batch
from streaming_lightning.errors import ConfigError
from streaming_lightning.integrations.lightning import state as positions


@dataclass
class _Run:
    """One iteration of the loader: where it started and how many batches it handed out."""

    epoch: int
    start: int  # global samples of the epoch consumed before this iteration
    batch_span: int  # global positions a device batch on every rank consumes
    total: int  # global positions in the epoch
    batches: int = 0
    exhausted: bool = False

    @property
    def position(self) -> int:
        # A short last batch (whole_batches=False) ends the epoch, not beyond it.
        return min(self.total, self.start + self.batches * self.batch_span)


class _EpochSampler(_InfiniteConstantSampler):
    """The sampler a DataLoader over an IterableDataset has, plus ``set_epoch``: Lightning (and
    any loop written for DistributedSampler) calls it before each epoch."""

    def __init__(self, loader: StreamingDataLoader) -> None:
        super().__init__()
        self._loader = weakref.ref(loader)

    def set_epoch(self, epoch: int) -> None:
        loader = self._loader()
        if loader is not None:
            loader.set_epoch(epoch)


class _WorkerWorld:
    """``worker_init_fn`` wrapper: put the rank's place in the job into a worker's environment
    (the dataset's contract) before the user's own ``worker_init_fn`` runs."""

    def __init__(self, world: World, inner: Callable[[int], None] | None) -> None:
        self.world, self.inner = world, inner

    def __call__(self, worker_id: int) -> None:
        os.environ.update(
            RANK=str(self.world.rank),
            WORLD_SIZE=str(self.world.world_size),
            LOCAL_RANK=str(self.world.local_rank),
            LOCAL_WORLD_SIZE=str(self.world.local_world_size),
        )
        if self.inner is not None:
            self.inner(worker_id)


class StreamingDataLoader(DataLoader):  # type: ignore[type-arg]
    """A ``DataLoader`` over a :class:`StreamingDataset` with ``state_dict`` /
    ``load_state_dict`` that resume at the next unseen batch (see the module docstring).

    ``batch_size`` is the per-device batch; the dataset's ``batch_size`` must be the same (it is
    set when the dataset has none), because the plan deals whole device batches to workers.
    ``world`` pins the rank's place in the job (the DataModule passes the trainer's); by default
    it is detected when each iteration starts. ``epoch_source`` returns the training loop's
    current epoch when an iteration starts (e.g. ``lambda: trainer.current_epoch``). Other
    arguments are the DataLoader's.
    """

    def __init__(
        self,
        dataset: StreamingDataset,
        batch_size: int,
        *,
        world: World | None = None,
        epoch_source: Callable[[], int] | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(dataset, StreamingDataset):
            raise ConfigError(
                f"StreamingDataLoader reads a StreamingDataset, got {type(dataset).__name__}."
            )
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}.")
        if dataset.batch_size is None:
            dataset.batch_size = batch_size
        elif dataset.batch_size != batch_size:
            raise ConfigError(
                f"The loader's batch_size={batch_size} differs from the dataset's "
                f"batch_size={dataset.batch_size}; they must be equal (the per-device batch), "
                "otherwise workers interleave samples out of the planned order."
            )
        # Default collation: batches are built in the workers straight from shard bytes and
        # cross as packed arrays (BatchesView/BatchesLoader; the values default_collate would
        # give, several times faster). A custom collate_fn gets per-sample dicts as usual.
        self._packed = kwargs.get("collate_fn") is None
        self._pin_packed = False
        self._streaming_dataset = dataset
        if self._packed:
            kwargs.pop("collate_fn", None)
            self._pin_packed = bool(kwargs.pop("pin_memory", False))
            super().__init__(
                BatchesView(dataset), batch_size=None, collate_fn=keep_packed, **kwargs
            )
            # The batches are batch_size samples each; say so to whoever asks (Lightning,
            # users). Auto-collation stays off: it depends on batch_sampler, not this field.
            object.__setattr__(self, "batch_size", batch_size)
        else:
            super().__init__(dataset, batch_size=batch_size, **kwargs)
        self.world = world
        self.epoch_source = epoch_source
        self._pending: dict[str, Any] | None = None
        self._next_epoch = 0
        self._run: _Run | None = None
        # DataLoader forbids assigning a sampler once built; this one only adds set_epoch.
        object.__setattr__(self, "sampler", _EpochSampler(self))

    # ------------------------------------------------------------------ world and plan

    @property
    def streaming_dataset(self) -> StreamingDataset:
        return self._streaming_dataset

    def _world(self) -> World:
        detected = detect_world()
        if self.world is None:
            return detected
        if (detected.rank, detected.world_size) != (self.world.rank, self.world.world_size):
            raise ConfigError(
                f"The trainer runs this process as rank {self.world.rank} of "
                f"{self.world.world_size}, but the dataset sees rank {detected.rank} of "
                f"{detected.world_size} (torch.distributed, else RANK/WORLD_SIZE). Launch through "
                "the trainer's strategy, or make RANK/WORLD_SIZE agree with it."
            )
        return self.world

    def _epoch_total(self, epoch: int, world: World) -> int:
        return int(self.streaming_dataset.plan(epoch, world).padded_samples)

    def __len__(self) -> int:
        """Batches per rank in a whole epoch (what Lightning sizes its epoch loop with)."""
        world = self._world()
        if self._run is not None and not self._run.exhausted:
            epoch = self._run.epoch
        elif self._pending is not None:
            epoch = int(self._pending["epoch"])
        else:
            epoch = self._next_epoch
        return self.streaming_dataset.rank_batches(self._epoch_total(epoch, world), world)

    # ------------------------------------------------------------------ epochs and resume

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration run ``epoch`` (a loaded position of ``epoch`` still applies;
        one of an earlier epoch is dropped)."""
        self._next_epoch = int(epoch)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume at ``state_dict``'s position on the next iteration (held until then, so it
        survives an iterator created before the restore)."""
        dataset = self.streaming_dataset
        world = self._world()
        positions.check_applicable(state_dict, dataset, world)
        state = dict(state_dict)
        # Apply now so len() and the plan use the saved canonical nodes and seed.
        dataset.load_state_dict(state)
        if int(state["sample_in_epoch"]) >= self._epoch_total(int(state["epoch"]), world):
            state = positions.advanced(state, int(state["epoch"]) + 1, 0)
        self._pending = state
        self._next_epoch = int(state["epoch"])
        self._run = None

    def state_dict(self) -> dict[str, Any]:
        """The position after the batches handed out so far (global, the same on every rank)."""
        if self._pending is not None:
            return dict(self._pending)
        world = self._world()
        run = self._run
        if run is None:
            return positions.position(self.streaming_dataset, world, self._next_epoch, 0)
        if run.exhausted or run.position >= run.total:  # the next epoch starts at 0
            return positions.position(self.streaming_dataset, world, self._next_epoch, 0)
        return positions.position(self.streaming_dataset, world, run.epoch, run.position)

    # ------------------------------------------------------------------ iteration

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        # A generator: nothing starts (no workers, no epoch) until the first next().
        return self._iterate()

    def _iterate(self) -> Iterator[Any]:
        world = self._world()
        run = self._begin(world)
        batches = self._start_workers(world)
        for batch in batches:
            run.batches += 1
            if self._packed:
                pin = self._pin_packed
                batch = unpack_batch(batch, self.streaming_dataset, pin)
            yield batch
        run.exhausted = True

    def _begin(self, world: World) -> _Run:
        """Decide this iteration's epoch and start, and set the dataset to it."""
        dataset = self.streaming_dataset
        epoch = self._next_epoch if self.epoch_source is None else int(self.epoch_source())
        pending = self._pending
        self._pending = None
        if pending is not None:
            positions.check_applicable(pending, dataset, world)
            if int(pending["epoch"]) >= epoch:
                state = pending
            else:  # the trainer moved past the saved epoch
                state = positions.advanced(pending, epoch, 0)
        else:
            state = positions.position(dataset, world, epoch, 0)
        # Loading the full state pins the canonical nodes for every process of this rank.
        dataset.load_state_dict(state)
        epoch, start = int(state["epoch"]), int(state["sample_in_epoch"])
        self._next_epoch = epoch + 1
        self._run = _Run(epoch, start, dataset.batch_span(world), self._epoch_total(epoch, world))
        return self._run

    def _start_workers(self, world: World) -> Iterator[Any]:
        own = self.worker_init_fn
        if self.num_workers > 0:
            self.worker_init_fn = _WorkerWorld(world, own)
        try:
            return super().__iter__()
        finally:
            self.worker_init_fn = own
