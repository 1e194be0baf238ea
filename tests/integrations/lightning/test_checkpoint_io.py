"""AtomicCheckpointIO: a kill during a save leaves the previous checkpoint loadable and nothing
in the temp dir; what it leaves beside the checkpoint is removed by the next save.

Lightning's own IO, for comparison (measured on this machine, 64 MB checkpoints, SIGKILL while
the write was under way): each kill left a 64 MB ``tmp*`` file in TMPDIR, and with TMPDIR on
tmpfs (another filesystem than the checkpoint) 6 kills of 6 during the move left ``last.ckpt``
truncated to 0-3 MB, unloadable.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from streaming_lightning.integrations.lightning import AtomicCheckpointIO
from streaming_lightning.integrations.lightning.checkpoint_io import discard_dead_writers

ROOT = Path(__file__).parents[3]

WRITER = """
import sys, torch
from streaming_lightning.integrations.lightning import AtomicCheckpointIO
io = AtomicCheckpointIO()
checkpoint = {"ballast": torch.zeros(16 * 1024 * 1024), "step": 0}
for step in range(10_000):
    checkpoint["step"] = step
    io.save_checkpoint(checkpoint, sys.argv[1])
    print(step, flush=True)
"""


def temps(directory: Path) -> list[str]:
    return [name for name in os.listdir(directory) if ".tmp." in name]


def test_a_kill_during_a_save_keeps_the_last_checkpoint(tmp_path: Path) -> None:
    ckpt, tmpdir = tmp_path / "ckpt", tmp_path / "tmp"
    tmpdir.mkdir()
    target = ckpt / "last.ckpt"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmpdir)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "0"
        deadline = time.monotonic() + 60
        while not temps(ckpt):  # the next save is being written
            assert time.monotonic() < deadline and writer.poll() is None
            time.sleep(0.0005)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(10)
    assert temps(ckpt), "the kill landed during a write"
    assert torch.load(target, weights_only=False)["step"] >= 0  # complete, loadable
    assert os.listdir(tmpdir) == [], "nothing of the checkpoint went to the temp dir"

    AtomicCheckpointIO().save_checkpoint({"step": -1}, target)
    assert temps(ckpt) == [], "the next save removed the dead writer's temp file"
    assert torch.load(target, weights_only=False) == {"step": -1}


def test_a_failed_save_changes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1}, target)
    with pytest.raises(Exception, match="pickle"):
        io.save_checkpoint({"step": 2, "bad": lambda: None}, target)
    assert torch.load(target, weights_only=False) == {"step": 1}
    assert os.listdir(tmp_path) == ["last.ckpt"]


def test_temps_of_live_writers_are_kept(tmp_path: Path) -> None:
    """Another live process may be writing a checkpoint into the same directory."""
    parent = tmp_path / f".other.ckpt.tmp.{os.getppid()}.00000000"
    dead = tmp_path / ".other.ckpt.tmp.99999999.00000000"
    mine = tmp_path / f".last.ckpt.tmp.{os.getpid()}.00000000"
    for path in (parent, dead, mine):
        path.write_bytes(b"partial")
    assert discard_dead_writers(str(tmp_path)) == 2
    assert os.listdir(tmp_path) == [parent.name]


def test_remote_paths_use_lightnings_io(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    monkeypatch.setattr(
        TorchCheckpointIO,
        "save_checkpoint",
        lambda self, ckpt, path, options=None: seen.append(path),
    )
    AtomicCheckpointIO().save_checkpoint({"step": 1}, "s3://bucket/ckpt/last.ckpt")
    assert seen == ["s3://bucket/ckpt/last.ckpt"]
