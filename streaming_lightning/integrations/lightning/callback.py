"""StreamingResumeCallback: mid-epoch resume for training loops that bring their own DataLoader.

A plain ``torch.utils.data.DataLoader`` over a StreamingDataset is not stateful, so Lightning
neither saves nor restores its position and replays the epoch from 0 after a restart. This
callback writes the position into every checkpoint and puts the dataset back there on resume.

What it counts: the batches the fit loop took from the train loader this epoch (the progress
Lightning saves and restores itself). Each is one device batch of ``batch_size`` samples on
every rank, so the global position is ``batches x global batch``. The dataset's ``batch_size``
must equal the loader's (the plan deals whole device batches to DataLoader workers).

When it restores: at ``on_train_start``. The fit loop has already created the train iterator by
then (its workers may have started reading the wrong epoch), so the iterator is stopped, the
dataset set to the saved position, and the iterator created again before the first batch.
A :class:`StreamingDataLoader` needs none of that: it is handed the position and applies it at
its first batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_warn
from torch.utils.data import DataLoader

from streaming_lightning.dataset import BatchesView, StreamingDataset, detect_world
from streaming_lightning.errors import ConfigError
from streaming_lightning.integrations.lightning import state as positions
from streaming_lightning.integrations.lightning.dataloader import StreamingDataLoader

#: Where the positions live in a checkpoint dict.
CHECKPOINT_KEY = "streaming_lightning"


def _flatten(loaders: Any) -> Iterator[Any]:
    """The loaders of ``trainer.train_dataloader`` (a loader, or a list/dict of them)."""
    if isinstance(loaders, Mapping):
        for value in loaders.values():
            yield from _flatten(value)
    elif isinstance(loaders, (list, tuple)):
        for value in loaders:
            yield from _flatten(value)
    elif loaders is not None:
        yield loaders


def _streaming_dataset(loader: Any) -> StreamingDataset | None:
    dataset = getattr(loader, "dataset", None)
    if isinstance(dataset, BatchesView):
        return dataset.dataset
    return dataset if isinstance(dataset, StreamingDataset) else None


def _device_batch(loader: DataLoader, dataset: StreamingDataset) -> int:  # type: ignore[type-arg]
    """The per-device batch, checked against the dataset's (the plan's unit)."""
    batch = loader.batch_size if loader.batch_size is not None else dataset.batch_size
    if dataset.batch_size is None or batch != dataset.batch_size:
        raise ConfigError(
            f"StreamingResumeCallback needs the dataset's batch_size to equal the DataLoader's: "
            f"the DataLoader has batch_size={loader.batch_size}, the dataset "
            f"batch_size={dataset.batch_size}. Pass StreamingDataset(batch_size="
            f"{loader.batch_size}) so workers keep the planned order."
        )
    return batch


class StreamingResumeCallback(pl.Callback):
    """Save and restore the position of every StreamingDataset the train loader reads."""

    def __init__(self) -> None:
        self._pending: list[dict[str, Any]] | None = None
        # Per train loader: (trainer epoch, dataset epoch) of the iteration this run set up.
        self._anchors: dict[int, tuple[int, int]] = {}

    # ------------------------------------------------------------------ save

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        loaders = self._train_loaders(trainer)
        if loaders:
            checkpoint[CHECKPOINT_KEY] = {
                "train": [self._position(trainer, index, loader) for index, loader in loaders]
            }

    def _position(self, trainer: pl.Trainer, index: int, loader: Any) -> dict[str, Any]:
        if isinstance(loader, StreamingDataLoader):
            return loader.state_dict()
        dataset = _streaming_dataset(loader)
        assert dataset is not None
        _device_batch(loader, dataset)
        world = detect_world()
        batches = int(trainer.fit_loop.epoch_loop.batch_progress.current.ready)
        epoch = self._dataset_epoch(trainer, index, dataset, batches)
        state = positions.position(dataset, world, epoch, batches * dataset.batch_span(world))
        state["trainer_epoch"] = int(trainer.current_epoch)
        return state

    def _dataset_epoch(
        self, trainer: pl.Trainer, index: int, dataset: StreamingDataset, batches: int
    ) -> int:
        if batches > 0:  # a worker has begun the epoch, so the dataset knows it
            return int(dataset.state_dict(0, from_beginning=True)["epoch"])
        anchor = self._anchors.get(index)
        if anchor is None:
            return int(trainer.current_epoch)
        return anchor[1] + int(trainer.current_epoch) - anchor[0]

    # ------------------------------------------------------------------ restore

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        saved = checkpoint.get(CHECKPOINT_KEY)
        self._pending = list(saved["train"]) if saved else None
        if saved is None:
            rank_zero_warn(
                "The checkpoint holds no streaming data position (it was saved without "
                "StreamingResumeCallback): plain DataLoaders over a StreamingDataset restart "
                "their epoch from its first sample."
            )

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        loaders = self._train_loaders(trainer)
        for _, loader in loaders:
            if isinstance(loader, StreamingDataLoader) and loader.epoch_source is None:
                loader.epoch_source = _EpochOf(trainer)
        states, self._pending = self._pending, None
        if states is None:
            return
        if len(states) != len(loaders):
            raise ConfigError(
                f"The checkpoint holds data positions for {len(states)} train loaders; this run "
                f"has {len(loaders)} train loaders reading a StreamingDataset."
            )
        plain: list[tuple[StreamingDataset, dict[str, Any]]] = []
        for (index, loader), state in zip(loaders, states):
            if isinstance(loader, StreamingDataLoader):
                loader.load_state_dict(state)
                continue
            dataset = _streaming_dataset(loader)
            assert dataset is not None
            _device_batch(loader, dataset)
            positions.check_applicable(state, dataset, detect_world())
            target = self._target(trainer, dataset, state)
            self._anchors[index] = (int(trainer.current_epoch), int(target["epoch"]))
            plain.append((dataset, target))
        if plain:

            def apply() -> None:
                for dataset, target in plain:
                    dataset.load_state_dict(target)

            _restart_train_iterator(trainer, apply)

    @staticmethod
    def _target(
        trainer: pl.Trainer, dataset: StreamingDataset, state: dict[str, Any]
    ) -> dict[str, Any]:
        """Where this run's first epoch starts: the saved position if the trainer resumes in the
        epoch it was taken in; the start of a later dataset epoch if the trainer moved on (a
        checkpoint taken at the end of an epoch, or after ``limit_train_batches``)."""
        ahead = int(trainer.current_epoch) - int(state.get("trainer_epoch", trainer.current_epoch))
        epoch, sample = int(state["epoch"]), int(state["sample_in_epoch"])
        if ahead > 0:
            return positions.advanced(state, epoch + ahead, 0)
        world = detect_world()
        if sample >= dataset.plan(epoch, world).padded_samples:
            return positions.advanced(state, epoch + 1, 0)
        return state

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _train_loaders(trainer: pl.Trainer) -> list[tuple[int, Any]]:
        loaders = _flatten(trainer.train_dataloader)
        return [
            (index, loader)
            for index, loader in enumerate(loaders)
            if _streaming_dataset(loader) is not None
        ]


class _EpochOf:
    """The trainer's current epoch, as a StreamingDataLoader ``epoch_source``."""

    def __init__(self, trainer: pl.Trainer) -> None:
        self.trainer = trainer

    def __call__(self) -> int:
        return int(self.trainer.current_epoch)


def _restart_train_iterator(trainer: pl.Trainer, apply: Callable[[], None]) -> None:
    """Stop the fit loop's train iterator (and its workers, which may already be reading),
    run ``apply``, and create the iterator again. Uses the fit loop's internals, which exist
    unchanged from Lightning 2.0 to 2.6; anything else is an error rather than a silent replay."""
    fit_loop = trainer.fit_loop
    combined = getattr(fit_loop, "_combined_loader", None)
    fetcher = getattr(fit_loop, "_data_fetcher", None)
    if combined is None or fetcher is None:
        apply()  # no iterator yet: nothing has read the dataset
        return
    mode_iterator = getattr(combined, "_iterator", None)
    for iterator in getattr(mode_iterator, "iterators", []):
        shutdown = getattr(iterator, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()
    combined.reset()
    apply()
    iter(fetcher)
