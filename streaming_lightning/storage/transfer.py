"""Download and upload with the guarantees every backend shares.

- Atomic: a download lands in a temp file in the destination directory, is fsynced, checked
  against the expected size when known, and renamed into place. A reader never sees a partial
  file, whatever happens to the process.
- Once per machine: a file lock per destination makes concurrent processes wait for one
  download instead of racing; whoever gets the lock second finds the file and returns.
- Retries: transient failures (timeouts, throttling, 5xx, resets, truncated bodies) are retried
  with exponential backoff and full jitter, ``retry`` times; not-found and access-denied fail
  at once. Every error names the URL and the attempt count, never credentials.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable
from typing import TypeVar

from filelock import FileLock, Timeout

from streaming_lightning.errors import (
    ConfigError,
    RemoteNotFoundError,
    RemotePermissionError,
    StorageError,
    TransientStorageError,
)
from streaming_lightning.fsutil import temp_path_for
from streaming_lightning.storage.registry import get_backend

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: First backoff delay in seconds; doubles per attempt, capped at ``_BACKOFF_CAP``.
_BACKOFF_BASE = 0.25
_BACKOFF_CAP = 8.0


def backoff_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**attempt)]."""
    return (rng or random).uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * (2**attempt)))


def with_retries(
    action: Callable[[], T], *, url: str, verb: str, retry: int, deadline: float | None = None
) -> T:
    """Run ``action``; retry transient storage errors up to ``retry`` times."""
    attempt = 0
    while True:
        try:
            return action()
        except (RemoteNotFoundError, RemotePermissionError):
            raise
        except TransientStorageError as err:
            out_of_time = deadline is not None and time.monotonic() >= deadline
            if attempt >= retry or out_of_time:
                tries = f"{attempt + 1} attempt{'s' if attempt else ''}"
                why = f"deadline passed after {tries}" if out_of_time else tries
                raise TransientStorageError(f"Failed to {verb} {url} ({why}): {err}") from err
            delay = backoff_delay(attempt)
            if deadline is not None:
                delay = max(0.0, min(delay, deadline - time.monotonic()))
            logger.warning("Retrying %s of %s in %.2fs after: %s", verb, url, delay, err)
            time.sleep(delay)
            attempt += 1


def lock_path_for(local_path: str) -> str:
    """Lock files live beside their target in a hidden folder, one per destination file."""
    head, tail = os.path.split(os.path.abspath(local_path))
    return os.path.join(head, ".locks", tail + ".lock")


def download_file(
    url: str,
    local_path: str,
    *,
    retry: int = 2,
    timeout: float = 60.0,
    expected_bytes: int | None = None,
    lock_timeout: float | None = None,
    verify: Callable[[str], None] | None = None,
) -> str:
    """Make ``local_path`` a complete copy of ``url``; returns ``local_path``.

    Returns at once if the file is already there. ``timeout`` bounds each network operation;
    the whole download (all retries included) must finish within ``lock_timeout`` (default:
    ``timeout * (retry + 1)`` plus backoff) or a :class:`StorageError` names the URL.
    ``verify(temp_path)`` may check the content (e.g. its hash) before it is renamed into
    place; raising :class:`TransientStorageError` from it discards the file and retries.
    """
    if os.path.exists(local_path):
        return local_path
    directory = os.path.dirname(os.path.abspath(local_path))
    os.makedirs(os.path.join(directory, ".locks"), exist_ok=True)
    budget = (
        lock_timeout
        if lock_timeout is not None
        else timeout * (retry + 1) + _BACKOFF_CAP * retry + 5
    )
    try:
        with FileLock(lock_path_for(local_path), timeout=budget):
            if os.path.exists(local_path):  # another process finished it while we waited
                return local_path
            deadline = time.monotonic() + budget
            with_retries(
                lambda: _download_once(url, local_path, timeout, expected_bytes, verify),
                url=url,
                verb="download",
                retry=retry,
                deadline=deadline,
            )
    except Timeout:
        raise StorageError(
            f"Timed out after {budget:.0f}s waiting for another process to download {url} to "
            f"{local_path} (lock {lock_path_for(local_path)})."
        ) from None
    return local_path


def _download_once(
    url: str,
    local_path: str,
    timeout: float,
    expected_bytes: int | None,
    verify: Callable[[str], None] | None,
) -> None:
    tmp = temp_path_for(local_path)
    try:
        get_backend(url).download(url, tmp, timeout)
        size = os.path.getsize(tmp)
        if expected_bytes is not None and size != expected_bytes:
            raise TransientStorageError(
                f"got {size} bytes, expected {expected_bytes} (truncated transfer)"
            )
        with open(tmp, "rb+") as file:
            os.fsync(file.fileno())
        os.replace(tmp, local_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_range(
    url: str, start: int, length: int, *, retry: int = 2, timeout: float = 60.0
) -> bytes:
    """``length`` bytes of the object at ``url`` from byte ``start`` on, fetching only those.

    For reading a piece of a large object (a sample, a shard's header) without downloading all
    of it. Transient failures are retried like downloads, and ``timeout`` bounds each network
    operation. The result is always exactly ``length`` bytes: a range that starts or runs past
    the end of the object is a :class:`StorageError` naming the URL and range, not retried.
    """
    if start < 0 or length < 0:
        raise ValueError(
            f"Cannot read {url}: start and length must be >= 0, not {start} and {length}."
        )
    if length == 0:
        return b""
    return with_retries(
        lambda: get_backend(url).read_range(url, start, length, timeout),
        url=url,
        verb="read",
        retry=retry,
    )


def hash_verifier(expected: str | None, algo: str, url: str) -> Callable[[str], None]:
    """A ``verify`` callback for :func:`download_file` that checks a downloaded file's digest.

    A mismatch is treated as a transient failure (the bytes were damaged in transit), so the
    file is discarded and fetched again; a digest the index does not record is a config error.
    """
    from streaming_lightning.format.hashing import hash_file

    if expected is None:
        raise ConfigError(
            f"validate_hash={algo!r} but the index records no {algo} digest for {url}."
        )

    def verify(path: str) -> None:
        actual = hash_file(algo, path)
        if actual != expected:
            raise TransientStorageError(
                f"{algo} of downloaded {url} is {actual}, index says {expected}"
            )

    return verify


def upload_file(local_path: str, url: str, *, retry: int = 2, timeout: float = 60.0) -> None:
    """Upload ``local_path`` to ``url``, retrying transient failures."""
    if not os.path.isfile(local_path):
        raise FileNotFoundError(f"Cannot upload {local_path}: no such file.")
    with_retries(
        lambda: get_backend(url).upload(local_path, url, timeout),
        url=url,
        verb="upload",
        retry=retry,
    )


def list_objects(url: str, *, retry: int = 2) -> list[str]:
    """Every object URL under the prefix ``url`` (sorted)."""
    return with_retries(lambda: get_backend(url).list(url), url=url, verb="list", retry=retry)


def object_exists(url: str, *, retry: int = 2) -> bool:
    return with_retries(lambda: get_backend(url).exists(url), url=url, verb="check", retry=retry)
