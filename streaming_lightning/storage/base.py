"""The contract of a storage backend: four operations on URLs, one backend per scheme.

Backends are thin adapters over each cloud SDK. They do not retry, lock, or write atomically:
:mod:`.transfer` does that once for all of them. What a backend must do is translate its SDK's
exceptions into our three kinds — :class:`RemoteNotFoundError` and
:class:`RemotePermissionError` (fail fast) and :class:`TransientStorageError` (retried) — so
the retry policy is the same everywhere. Messages name the URL and never credentials.
"""

from __future__ import annotations

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
    if status in TRANSIENT_STATUSES or status >= 500:
        return TransientStorageError(f"Cannot {verb} {url}: {what}.")
    return StorageError(f"Cannot {verb} {url}: {what}{': ' + detail if detail else '.'}")


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
