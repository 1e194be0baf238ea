"""The contract of a storage backend: a few operations on URLs, one backend per scheme.

Backends are thin adapters over each cloud SDK. They do not retry, lock, or write atomically:
:mod:`.transfer` does that once for all of them. What a backend must do is translate its SDK's
exceptions into our three kinds — :class:`RemoteNotFoundError` and
:class:`RemotePermissionError` (fail fast) and :class:`TransientStorageError` (retried) — so
the retry policy is the same everywhere. Messages name the URL and never credentials.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from streaming_lightning.errors import (
    ConfigError,
    RemoteNotFoundError,
    RemotePermissionError,
    StorageError,
    TransientStorageError,
)

#: HTTP statuses below 500 that are worth retrying (timeout, throttling).
TRANSIENT_STATUSES = frozenset({408, 429})


def status_error(
    status: int, url: str, verb: str, what: str, *, advice: str = "", detail: str = ""
) -> StorageError:
    """The one retry policy of every HTTP-speaking backend: 404 is not found and 401/403 access
    denied (neither retried), 408/429/5xx transient (retried), anything else a plain error.
    Backends map their SDK's error codes to a status first; ``what`` describes the response."""
    if status == 404:
        return RemoteNotFoundError(f"Cannot {verb} {url}: not found ({what}).")
    if status in (401, 403):
        return RemotePermissionError(
            f"Cannot {verb} {url}: access denied ({what}).{' ' + advice if advice else ''}"
        )
    if status == 416:
        return StorageError(
            f"Cannot {verb} {url}: the range starts at or past the end of the object ({what})."
        )
    if status in TRANSIENT_STATUSES or status >= 500:
        return TransientStorageError(f"Cannot {verb} {url}: {what}.")
    return StorageError(f"Cannot {verb} {url}: {what}{': ' + detail if detail else '.'}")


def byte_span(start: int, length: int) -> str:
    """``bytes 10-19``: how messages name a range (both ends inclusive, as in HTTP)."""
    return f"bytes {start}-{start + length - 1}"


def range_header(start: int, length: int) -> str:
    """The HTTP ``Range`` value asking for ``length`` (> 0) bytes from ``start``."""
    return f"bytes={start}-{start + length - 1}"


#: ``Content-Range: bytes 10-15/16`` (a 206) or ``bytes */16`` (a 416); the size may be ``*``.
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(?:(?P<first>\d+)-\d+|\*)/(?P<total>\d+|\*)\s*$")


def content_range_total(header: str | None) -> int | None:
    """The object's full size from a ``Content-Range`` header, if it says."""
    match = _CONTENT_RANGE.match(header or "")
    return int(match["total"]) if match and match["total"] != "*" else None


def range_response_error(
    url: str, start: int, length: int, *, sent: int | None, content_range: str | None
) -> StorageError | None:
    """Whether a ranged GET's headers promise anything but the range asked for, judged before
    the body is read: a server that ignores ``Range`` would send the whole object.

    ``sent`` is the Content-Length (``None`` if not given). Without a Content-Range the answer
    is the object from byte 0, which is only right for a range that starts there.
    """
    total = content_range_total(content_range)
    if sent is not None and sent != length:
        return range_size_error(url, start, length, sent, total=total)
    match = _CONTENT_RANGE.match(content_range or "")
    first = int(match["first"]) if match and match["first"] is not None else None
    if first != start and (content_range or start):
        return StorageError(
            f"Cannot read {byte_span(start, length)} of {url}: the server answered with "
            f"{content_range or 'the object from byte 0 (no Content-Range)'}, not the range "
            "asked for (it may not support ranged reads)."
        )
    return None


def range_size_error(
    url: str, start: int, length: int, got: int, *, total: int | None = None
) -> StorageError:
    """The answer to a ranged read is not the ``length`` bytes asked for: never returned.

    Not transient: a range that runs past the end of the object, or a server that ignores
    ``Range``, gives the same answer every time. (A body cut short in transit is a different
    failure, which backends report as :class:`TransientStorageError`.)
    """
    span = byte_span(start, length)
    if got > length:
        return StorageError(
            f"Cannot read {span} of {url}: the server sent {got} bytes for a {length}-byte "
            "range (it may not support ranged reads)."
        )
    size = f" ({total} bytes)" if total is not None else ""
    return StorageError(
        f"Cannot read {span} of {url}: got {got} of {length} bytes, the range runs past the end "
        f"of the object{size}. Ask only for bytes inside the object."
    )


def checked_range(
    data: bytes, url: str, start: int, length: int, *, total: int | None = None
) -> bytes:
    """``data`` if it is exactly the range asked for, else :func:`range_size_error`."""
    if len(data) != length:
        raise range_size_error(url, start, length, len(data), total=total)
    return data


@dataclass(frozen=True)
class ObjectURL:
    """A parsed ``scheme://bucket/key`` URL (for OCI/Azure the bucket is the container)."""

    scheme: str
    bucket: str
    key: str

    @classmethod
    def parse(cls, url: str) -> ObjectURL:
        # Not urllib.parse: object keys may contain '?' and '#', which it would cut off.
        scheme, sep, rest = url.partition("://")
        bucket, _, key = rest.partition("/")
        if not sep or not scheme or not bucket:
            raise ConfigError(f"{url!r} is not a storage URL like s3://bucket/path.")
        return cls(scheme, bucket, key.lstrip("/"))

    def __str__(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.key}"

    def child(self, name: str) -> ObjectURL:
        key = f"{self.key.rstrip('/')}/{name}" if self.key else name
        return ObjectURL(self.scheme, self.bucket, key)


class Backend(ABC):
    """One storage service. Instances are created per process and may be shared by threads."""

    #: URL schemes served by this backend, e.g. ("s3",).
    schemes: ClassVar[tuple[str, ...]] = ()
    #: The pip extra that installs this backend's SDK, e.g. "s3".
    extra: ClassVar[str] = ""

    @abstractmethod
    def download(self, url: str, path: str, timeout: float) -> None:
        """Write the object at ``url`` to the (temporary) file ``path``, overwriting it.

        ``timeout`` bounds each network operation in seconds. The caller renames ``path`` into
        place, so the backend may leave it partial on failure.
        """

    @abstractmethod
    def upload(self, path: str, url: str, timeout: float) -> None:
        """Upload the local file ``path`` to ``url`` (overwrite if it exists)."""

    @abstractmethod
    def list(self, url: str) -> list[str]:
        """Full URLs of every object whose URL starts with ``url``, sorted."""

    def read_range(self, url: str, start: int, length: int, timeout: float) -> bytes:
        """Exactly ``length`` (> 0) bytes of the object at ``url`` from byte ``start`` on,
        without fetching the rest of it (callers check the arguments).

        ``timeout`` bounds each network operation. Fewer bytes than asked for (the range runs
        past the end of the object) is a :class:`StorageError` naming the range, never a short
        result: see :func:`checked_range`.
        """
        raise NotImplementedError(
            f"{type(self).__name__} cannot read byte ranges (asked for "
            f"{byte_span(start, length)} of {url})."
        )

    def exists(self, url: str) -> bool:
        """Whether an object exists at exactly ``url`` (by default: whether ``size`` finds it)."""
        try:
            self.size(url)
        except RemoteNotFoundError:
            return False
        return True

    def size(self, url: str) -> int | None:
        """The object's size in bytes if cheaply known, else ``None``."""
        return None
