"""AtomicCheckpointIO: checkpoints a kill can neither leave half-written nor leave behind.

Lightning's ``TorchCheckpointIO`` writes a checkpoint to a ``tempfile.mkstemp()`` file in the
system temp dir and moves it into place. A SIGKILL during the write leaves that
checkpoint-sized temp file in the temp dir for good, one per kill. Worse, when the temp dir is
on another filesystem than the checkpoints (``/tmp`` on tmpfs or a local disk, checkpoints on
shared storage), the move is a copy into the final name: a kill during it leaves a truncated
``last.ckpt`` (the previous good one already overwritten) that the restart cannot load.

This plugin writes the checkpoint to a temp file beside its final name, fsyncs it, renames it
over the target (atomic within a filesystem) and fsyncs the directory. Before each save it
removes the temp files earlier writers left in that directory when they were killed (a temp
file whose writer is no longer alive, or this process's own). Remote paths (``s3://`` ...)
and ``storage_options`` go to Lightning's own implementation.

Use it with ``Trainer(plugins=[AtomicCheckpointIO()])``.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import torch
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

from streaming_lightning.fsutil import atomic_file, parse_temp_name


def _local_path(path: _PATH) -> str | None:
    text = os.fspath(path)
    if text.startswith("file://"):
        return text[len("file://") :]
    return None if "://" in text else text


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def discard_dead_writers(directory: str) -> int:
    """Remove temp files (``temp_path_for`` names) in ``directory`` whose writer is gone: a
    dead process, or this one (which is not writing any now). Returns how many."""
    removed = 0
    for name in os.listdir(directory):
        parsed = parse_temp_name(name)
        if parsed is None or (parsed[1] != os.getpid() and _alive(parsed[1])):
            continue
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(directory, name))
            removed += 1
    return removed


def _fsync_directory(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a directory; the rename is still atomic
    finally:
        os.close(fd)


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose local saves are atomic and leave nothing behind."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None
    ) -> None:
        local = _local_path(path)
        if local is None or storage_options is not None:
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        target = os.path.abspath(local)
        directory = os.path.dirname(target)
        os.makedirs(directory, exist_ok=True)
        discard_dead_writers(directory)
        with atomic_file(target, fsync=True) as file:
            torch.save(checkpoint, file)
        _fsync_directory(directory)
