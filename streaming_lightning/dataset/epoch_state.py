"""Epoch counters shared between the process that owns a dataset and its DataLoader workers.

DataLoader workers run ``__iter__`` on copies of the dataset, so a plain attribute cannot tell
the main process (for ``state_dict``) or the next epoch's workers which epoch is running. A
small ``multiprocessing`` array is inherited by forked workers and passed to spawned ones; it is
created lazily in each process that owns a dataset (a new DDP rank gets its own).

Nothing named may outlive a killed run. The array lives in multiprocessing's heap (a file
unlinked as soon as it is made), and its lock is a fork-context lock, whose semaphore is
unlinked at creation too. A spawn-context lock would instead keep a ``/dev/shm/sem.mp-*`` name
until its owner exits cleanly or the resource tracker removes it, and a SIGKILL of the whole
job (tracker included) leaves it behind for good, one per rank per kill. Only when the state is
first pickled into a spawned or forkserver worker (which reopens the lock by name) is the lock
replaced by a spawn-context one; that name is unavoidable there and goes away when the process
that made it exits normally.

Layout: ``[resume_epoch, resume_offset, resume_global_batch, next_pending, started[0], ...,
started[MAX_WORKERS-1]]`` where
``started[w]`` counts the epochs worker ``w`` has begun. Every worker begins every epoch, so
worker ``w``'s epoch is ``started[w]`` when it begins.
"""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing.context import get_spawning_popen
from typing import Any

MAX_WORKERS = 512
_RESUME_EPOCH, _RESUME_OFFSET, _RESUME_BATCH, _NEXT_PENDING, _FIRST_SLOT = 0, 1, 2, 3, 4


def _in_dataloader_worker() -> bool:
    try:
        from torch.utils.data import get_worker_info
    except ImportError:
        return False
    return get_worker_info() is not None


def _unnamed_lock() -> Any:
    """A process-shared lock that leaves no name in ``/dev/shm`` (fork context; on platforms
    without fork, semaphores are unnamed anyway)."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn").RLock()


class EpochState:
    def __init__(self) -> None:
        self._array: Any = None
        self._lock: Any = None
        self._lock_named = False  # whether the lock can be pickled into a spawned process
        self._owner_pid: int | None = None

    def _values(self) -> Any:
        if self._array is None or (self._owner_pid != os.getpid() and not _in_dataloader_worker()):
            self._array = multiprocessing.RawArray("q", _FIRST_SLOT + MAX_WORKERS)
            self._array[_RESUME_EPOCH] = -1
            self._lock = _unnamed_lock()
            self._lock_named = False
            self._owner_pid = os.getpid()
        return self._array

    def begin(self, worker: int) -> tuple[int, int]:
        """Called when worker ``worker`` starts iterating: (epoch, samples to skip)."""
        values = self._values()
        with self._lock:
            epoch = values[_FIRST_SLOT + worker]
            values[_FIRST_SLOT + worker] = epoch + 1
            values[_NEXT_PENDING] = 0
            start = values[_RESUME_OFFSET] if values[_RESUME_EPOCH] == epoch else 0
        return int(epoch), int(start)

    def current_epoch(self) -> int:
        """The epoch being (or last) iterated; the next one if none started yet."""
        values = self._values()
        with self._lock:
            if values[_NEXT_PENDING]:  # set_next ran and no worker has begun yet
                return int(values[_RESUME_EPOCH])
            started = max(values[_FIRST_SLOT : _FIRST_SLOT + MAX_WORKERS])
            if started == 0:
                return max(0, values[_RESUME_EPOCH]) if values[_RESUME_EPOCH] >= 0 else 0
            return int(started) - 1

    def resume_point(self) -> tuple[int, int, int]:
        """(epoch, samples consumed, global batch of the plan they count in; 0 = current)."""
        values = self._values()
        return int(values[_RESUME_EPOCH]), int(values[_RESUME_OFFSET]), int(values[_RESUME_BATCH])

    def set_next(self, epoch: int, offset: int = 0, global_batch: int = 0) -> None:
        """Make the next iteration (every worker) run ``epoch``, skipping ``offset`` samples of
        the plan dealt in ``global_batch`` (0: whatever the run uses)."""
        values = self._values()
        with self._lock:
            for i in range(MAX_WORKERS):
                values[_FIRST_SLOT + i] = epoch
            values[_RESUME_EPOCH] = epoch
            values[_RESUME_OFFSET] = offset
            values[_RESUME_BATCH] = global_batch
            values[_NEXT_PENDING] = 1

    def __getstate__(self) -> dict[str, Any]:
        # Only a process being spawned (a DataLoader worker) may share the array; any other
        # pickling (deepcopy, DDP spawn of a new rank) starts fresh state.
        if get_spawning_popen() is None or self._array is None:
            return {"array": None, "lock": None, "pid": None}
        if not self._lock_named:
            # A spawned process reopens the lock by name, which a fork-context lock has not.
            # The workers of one loader all start here, before any of them reads the state.
            self._lock = multiprocessing.get_context("spawn").RLock()
            self._lock_named = True
        return {"array": self._array, "lock": self._lock, "pid": self._owner_pid}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._array = state["array"]
        self._lock = state["lock"]
        self._lock_named = state["lock"] is not None
        self._owner_pid = state["pid"]
