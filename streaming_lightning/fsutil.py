"""Small filesystem primitives every layer shares: atomic writes and safe path joins.

A reader of a shared cache must never see a partial file, so every file we create is written
to a temporary name in the same directory and renamed into place (rename is atomic on POSIX
within one filesystem).
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from streaming_lightning.errors import UnsafePathError

_TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.tmp\.(?P<pid>\d+)\.[0-9a-f]{8}$")


def temp_path_for(path: str) -> str:
    """A unique temporary name beside ``path``; unique per process and call."""
    head, tail = os.path.split(path)
    return os.path.join(head, f".{tail}.tmp.{os.getpid()}.{uuid.uuid4().hex[:8]}")


def parse_temp_name(name: str) -> tuple[str, int] | None:
    """(target file name, writer's pid) of a name :func:`temp_path_for` made, else None.

    A process killed between creating its temp file and renaming it leaves the file behind;
    whoever next takes the lock that guards the target is the one to remove it."""
    match = _TEMP_NAME.match(name)
    return (match["target"], int(match["pid"])) if match else None


@contextlib.contextmanager
def atomic_file(path: str, *, fsync: bool = False) -> Iterator[BinaryIO]:
    """A binary file that appears at ``path`` only once the block completes (temp file +
    rename); on any error the temp file is removed and ``path`` is untouched.

    ``fsync=True`` additionally makes the content durable before it becomes visible, for files
    whose loss after a power cut would matter (downloads, index files, checkpoints).
    """
    tmp = temp_path_for(path)
    try:
        with open(tmp, "wb") as file:
            yield file
            if fsync:
                file.flush()
                os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write(path: str, chunks: bytes | Iterable[bytes], *, fsync: bool = False) -> int:
    """Write ``chunks`` to ``path`` atomically (see :func:`atomic_file`); return the bytes
    written."""
    parts: Iterable[bytes] = (chunks,) if isinstance(chunks, bytes) else chunks
    written = 0
    with atomic_file(path, fsync=fsync) as file:
        for chunk in parts:
            written += file.write(chunk)
    return written


#: Longest file name component and path most filesystems accept (NAME_MAX, PATH_MAX - 1).
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4095


def safe_join(root: str, relative: str, *, source: str) -> str:
    """Join an untrusted relative path onto ``root``, refusing anything that escapes it.

    ``source`` names where the path came from (e.g. the index.json) for the error message.
    Subdirectories are allowed because merged indexes name shards as ``part/shard.00000.mds``.
    Names no filesystem accepts (too long) are refused here too, so opening one later cannot
    fail with an unexpected OS error.
    """
    if not isinstance(relative, str) or not relative:
        raise UnsafePathError(f"{source}: file name {relative!r:.200} is empty or not a string.")
    if "\0" in relative or "\\" in relative:
        raise UnsafePathError(
            f"{source}: file name {relative!r:.200} contains a forbidden character."
        )
    if os.path.isabs(relative) or relative.startswith("~"):
        raise UnsafePathError(
            f"{source}: file name {relative!r:.200} is absolute; it must be relative."
        )
    parts = relative.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise UnsafePathError(
            f"{source}: file name {relative!r:.200} would escape the dataset directory "
            "(no '..', '.', or empty components allowed)."
        )
    try:
        encoded = [os.fsencode(part) for part in parts]
    except UnicodeError:
        raise UnsafePathError(
            f"{source}: file name {relative!r:.200} cannot be encoded for this filesystem."
        ) from None
    if len(os.fsencode(relative)) > MAX_PATH_BYTES or max(map(len, encoded)) > MAX_NAME_BYTES:
        raise UnsafePathError(
            f"{source}: file name {relative!r:.200} is longer than a file name can be."
        )
    return os.path.join(root, *parts)
