"""What a case measures besides time: peak resident memory and shared memory in use."""

from __future__ import annotations

import os
import resource
import threading
import time
from types import TracebackType
from typing import Any

import numpy as np


def _shm_used() -> int:
    try:
        stats = os.statvfs("/dev/shm")
    except OSError:
        return 0
    return (stats.f_blocks - stats.f_bfree) * stats.f_frsize


class PeakMemory:
    """Peak RSS of this process and of its largest waited-for child (DataLoader workers), and
    the peak growth of /dev/shm while the block runs (polled every 5 ms)."""

    def __enter__(self) -> PeakMemory:
        self._baseline = _shm_used()
        self.shm_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.shm_peak = max(self.shm_peak, _shm_used() - self._baseline)
            time.sleep(0.005)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.main_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


class Clock:
    def __enter__(self) -> Clock:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


PAGE = 4096


def touch(sample: dict[str, Any]) -> int:
    """What any consumer of a large value does first — read it: one byte of every page of
    each *view* of 4 KB or more. Libraries that hand out lazy views of a memory map (litdata
    yields memoryviews) would otherwise be timed without ever reading the data. A ``bytes``
    object is in memory by construction (its copy was timed when it was made), so it is not
    touched again."""
    total = 0
    for value in sample.values():
        if isinstance(value, memoryview) and len(value) >= PAGE:
            total += int(np.frombuffer(value, np.uint8)[::PAGE].sum())
        elif isinstance(value, list) and value and isinstance(value[0], memoryview):
            total += sum(touch({"v": item}) for item in value)  # a collated column
    return total


def warm_page_cache(directory: str) -> None:
    """Read every file under ``directory`` once, so a case that means "data on local disk"
    starts every library from the same warm page cache (this machine reclaims cold pages
    within minutes; whichever library ran first would otherwise pay the disk reads)."""
    for root, _, files in os.walk(directory):
        for name in files:
            with open(os.path.join(root, name), "rb") as file:
                while file.read(16 << 20):
                    pass
