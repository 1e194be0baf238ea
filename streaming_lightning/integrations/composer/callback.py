"""A Composer callback: how fast data arrives, how long the trainer waits for it, and a check
that a resumed run continues the data it was trained on.

Stall time is measured between Composer's ``before_dataloader`` and ``after_dataloader`` events
(the trainer blocked in ``next(loader)``); throughput is global samples per second of wall time.
"""

from __future__ import annotations

import time

from composer.core import Callback, State
from composer.loggers import Logger

from streaming_lightning.dataset import StreamingDataset
from streaming_lightning.dataset.world import detect_world
from streaming_lightning.integrations.composer.dataspec import DatasetMismatchError, describe


def train_dataset(state: State) -> StreamingDataset | None:
    """The StreamingDataset behind Composer's train dataloader, if there is one."""
    loader = state.train_dataloader
    dataset = getattr(loader, "dataset", None)
    dataset = getattr(dataset, "dataset", dataset)  # a BatchesView / ResumeView
    return dataset if isinstance(dataset, StreamingDataset) else None


class StreamingMonitor(Callback):  # type: ignore[misc]
    """Logs ``streaming/*`` metrics every ``log_interval`` batches and validates resumes.

    Metrics (over the last window): ``samples_per_second`` and ``batches_per_second`` (global,
    wall time), ``stall_seconds`` and ``stall_fraction`` (time this rank waited for batches),
    and ``stall_seconds_total`` since fit start.

    On ``fit_start`` of a run that resumed its train dataset from a checkpoint, a global batch
    size other than the checkpoint's is an error naming both (``allow_global_batch_change=True``
    lets the dataset re-deal the rest of the epoch instead), and a checkpoint taken at an epoch
    end starts the next epoch rather than replaying the finished one.
    """

    def __init__(self, log_interval: int = 10, allow_global_batch_change: bool = False) -> None:
        if log_interval < 1:
            raise ValueError(f"log_interval must be >= 1, got {log_interval}.")
        self.log_interval = log_interval
        self.allow_global_batch_change = allow_global_batch_change
        self._waiting_since: float | None = None
        self._window_start = 0.0
        self._window_samples = 0
        self._window_batches = 0
        self._window_stall = 0.0
        self._total_stall = 0.0

    # ------------------------------------------------------------------ resume

    def fit_start(self, state: State, logger: Logger) -> None:
        self._start_window(state)
        dataset = train_dataset(state)
        if dataset is None or not state.dataset_resumption.get("train"):
            return
        # Right after load_state_dict the dataset reports the loaded position.
        loaded = dataset.state_dict(0, False)
        current_batch = dataset.global_batch(detect_world())
        saved_batch = loaded.get("global_batch_size")
        if saved_batch not in (None, current_batch) and not self.allow_global_batch_change:
            raise DatasetMismatchError(
                f"The checkpoint's train data position was saved with global batch size "
                f"{saved_batch}, but this run's global batch size is {current_batch} "
                f"(per-device batch {dataset.batch_size} x data-parallel ranks) on "
                f"{describe(dataset)}. Keep the global batch size, or pass "
                "StreamingMonitor(allow_global_batch_change=True) to re-deal the rest of the "
                "epoch in the new batch size."
            )
        epoch = int(state.timestamp.epoch)
        if epoch > loaded["epoch"] and int(state.timestamp.batch_in_epoch) == 0:
            # Saved after the epoch ended: Composer counts 0 samples into the next epoch while
            # the dataset still names the finished one.
            dataset.set_epoch(epoch)

    # ------------------------------------------------------------------ throughput

    def _start_window(self, state: State) -> None:
        self._window_start = time.perf_counter()
        self._window_samples = int(state.timestamp.sample)
        self._window_batches = 0
        self._window_stall = 0.0

    def before_dataloader(self, state: State, logger: Logger) -> None:
        self._waiting_since = time.perf_counter()

    def after_dataloader(self, state: State, logger: Logger) -> None:
        if self._waiting_since is None:
            return
        stall = time.perf_counter() - self._waiting_since
        self._waiting_since = None
        self._window_stall += stall
        self._total_stall += stall

    def epoch_start(self, state: State, logger: Logger) -> None:
        self._waiting_since = None  # the last wait of an epoch ends in StopIteration

    def batch_end(self, state: State, logger: Logger) -> None:
        self._window_batches += 1
        if self._window_batches < self.log_interval:
            return
        elapsed = max(time.perf_counter() - self._window_start, 1e-9)
        samples = int(state.timestamp.sample) - self._window_samples
        logger.log_metrics(
            {
                "streaming/samples_per_second": samples / elapsed,
                "streaming/batches_per_second": self._window_batches / elapsed,
                "streaming/stall_seconds": self._window_stall,
                "streaming/stall_fraction": self._window_stall / elapsed,
                "streaming/stall_seconds_total": self._total_stall,
            }
        )
        self._start_window(state)
