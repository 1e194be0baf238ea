"""EpochState, the epoch counters a dataset shares with its DataLoader workers: a SIGKILL of the
whole job (resource tracker included) leaves no name behind in /dev/shm."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]

OWNER = """
import multiprocessing, time
from streaming_lightning.dataset.epoch_state import EpochState

state = EpochState()
state.set_next(3, 40, 8)
worker = multiprocessing.get_context("fork").Process(target=state.begin, args=(0,))
worker.start()
worker.join()
assert state.current_epoch() == 3, state.current_epoch()
# A named semaphore is mapped under the temp name glibc created it with, then linked to its
# real name: the inode is what identifies it.
with open("/proc/self/maps") as maps:
    inodes = {line.split()[4] for line in maps if " /dev/shm/" in line}
print(" ".join(sorted(inodes)) or "-", flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="needs /dev/shm")
def test_sigkilled_owner_leaves_nothing_in_dev_shm() -> None:
    """The lock was a spawn-context one, whose semaphore keeps a ``/dev/shm/sem.mp-*`` name
    until a clean exit or the resource tracker removes it: every SIGKILLed rank left one."""
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its resource tracker, if any, dies with it
    )
    try:
        assert owner.stdout is not None
        line = owner.stdout.readline().split()
    finally:
        os.killpg(owner.pid, signal.SIGKILL)
        owner.wait(10)
    assert line, "the owner did not start"
    mapped = {int(inode) for inode in line if inode != "-"}
    left = [e.name for e in os.scandir("/dev/shm") if e.inode() in mapped]
    assert not left, f"named shared memory outlived its SIGKILLed owner: {left}"
