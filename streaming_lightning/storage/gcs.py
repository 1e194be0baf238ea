"""Google Cloud Storage (``gs://bucket/key``) through google-cloud-storage.

Configured the way GCS users already configure the SDK and ``gsutil``:

- ``STORAGE_EMULATOR_HOST`` (the SDK's own variable) points at an emulator; requests then go
  there unauthenticated, billed to ``GOOGLE_CLOUD_PROJECT`` (default ``test``).
- Otherwise Application Default Credentials: ``GOOGLE_APPLICATION_CREDENTIALS``,
  ``gcloud auth application-default login``, or the service account of a GCP machine.

The SDK's own retries are switched off (``retry=None``): :mod:`.transfer` retries every backend
the same way. Every SDK exception is mapped in one place, :func:`_translated`.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import google.auth.exceptions as gauth_errors
import requests.adapters
import requests.exceptions
import urllib3.exceptions
from google.api_core import exceptions as api_errors
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from streaming_lightning.errors import (
    ConfigError,
    RemotePermissionError,
    StorageError,
    TransientStorageError,
)
from streaming_lightning.storage.base import (
    Backend,
    ObjectURL,
    byte_span,
    checked_range,
    status_error,
)

_EMULATOR_VAR = "STORAGE_EMULATOR_HOST"
_PROJECT_VAR = "GOOGLE_CLOUD_PROJECT"

_HOW_TO_CONFIGURE = (
    "Configure Application Default Credentials: `gcloud auth application-default login`, "
    "GOOGLE_APPLICATION_CREDENTIALS=/path/to/service-account.json, or run on GCP with a "
    "service account attached; set STORAGE_EMULATOR_HOST to use an emulator."
)

#: Default per-request timeout for calls without one in the Backend contract (list, stat).
_METADATA_TIMEOUT = 60.0
#: Connections kept per host, so parallel shard downloads reuse sockets instead of reconnecting.
_POOL_SIZE = 64


def _media_errors() -> tuple[type[BaseException], ...]:
    """Upload/download protocol errors: ``google.cloud.storage.exceptions`` in SDK 3.x, which
    subclass ``google.resumable_media``'s (the only ones in SDK 2.x) when that is installed."""
    found: list[type[BaseException]] = []
    for module_name in ("google.cloud.storage.exceptions", "google.resumable_media"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        found.extend(getattr(module, name) for name in ("InvalidResponse", "DataCorruption"))
    return tuple(found)


_TRANSIENT_API_ERRORS: tuple[type[BaseException], ...] = (
    api_errors.TooManyRequests,
    api_errors.InternalServerError,
    api_errors.ServiceUnavailable,
    api_errors.BadGateway,
    api_errors.GatewayTimeout,
)
_TRANSIENT_NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    urllib3.exceptions.HTTPError,  # raw (undecoded) downloads stream through urllib3 directly
    gauth_errors.TransportError,  # e.g. the metadata server or token endpoint did not answer
    *_media_errors(),
    ConnectionError,
    TimeoutError,
)


def _from_api_error(err: api_errors.GoogleAPICallError, url: str, verb: str) -> StorageError:
    """Classify an HTTP error response; the service's status and reason, never headers."""
    status = int(err.code or 0)
    what = f"GCS {status} {type(err).__name__}" if status else f"GCS {type(err).__name__}"
    if isinstance(err, api_errors.NotFound):
        status = 404
    elif isinstance(err, (api_errors.Forbidden, api_errors.Unauthorized)):
        status = 403
    elif isinstance(err, _TRANSIENT_API_ERRORS):
        status = 503
    return status_error(status, url, verb, what, advice=_HOW_TO_CONFIGURE, detail=str(err.message))


@contextmanager
def _translated(url: str, verb: str) -> Iterator[None]:
    """Map SDK, auth and network errors onto our three kinds; every message names ``url``."""
    try:
        yield
    except api_errors.GoogleAPICallError as err:
        raise _from_api_error(err, url, verb) from None
    except gauth_errors.DefaultCredentialsError:
        # The SDK's text can name a key file's path; the advice is what the user needs.
        raise RemotePermissionError(
            f"Cannot {verb} {url}: no usable Google Cloud credentials found. {_HOW_TO_CONFIGURE}"
        ) from None
    except gauth_errors.RefreshError as err:
        if getattr(err, "retryable", False):
            raise TransientStorageError(
                f"Cannot {verb} {url}: could not refresh the access token (retryable)."
            ) from None
        raise RemotePermissionError(
            f"Cannot {verb} {url}: the credentials were rejected when refreshing the access "
            f"token. {_HOW_TO_CONFIGURE}"
        ) from None
    except _TRANSIENT_NETWORK_ERRORS as err:
        raise TransientStorageError(f"Cannot {verb} {url}: {type(err).__name__}: {err}") from err


def _make_client() -> storage.Client:
    """An emulator client when ``STORAGE_EMULATOR_HOST`` is set, else one on ADC."""
    if os.environ.get(_EMULATOR_VAR):
        client = storage.Client(
            project=os.environ.get(_PROJECT_VAR) or "test", credentials=AnonymousCredentials()
        )
    else:
        # Reading and writing objects needs no project. Passing one explicitly (None unless
        # GOOGLE_CLOUD_PROJECT is set) stops the SDK from refusing credentials that carry none,
        # e.g. a `gcloud auth application-default login` without a quota project.
        client = storage.Client(project=os.environ.get(_PROJECT_VAR) or None)
    _widen_connection_pool(client)
    return client


def _widen_connection_pool(client: storage.Client) -> None:
    """requests keeps 10 connections per host by default; shard downloads run more threads.

    ``Client._http`` is the SDK's lazily created authorized ``requests.Session`` (documented
    as the ``_http`` constructor argument); mounting adapters on a Session is public API. Only
    plain adapters are replaced, so an mTLS adapter the SDK mounted keeps working.
    """
    session = client._http
    if not isinstance(session, requests.Session):
        return
    adapter = requests.adapters.HTTPAdapter(pool_connections=_POOL_SIZE, pool_maxsize=_POOL_SIZE)
    for prefix in ("https://", "http://"):
        if type(session.adapters.get(prefix)) is requests.adapters.HTTPAdapter:
            session.mount(prefix, adapter)


class GCSBackend(Backend):
    schemes = ("gs",)
    extra = "gcs"

    def __init__(self) -> None:
        self._client: storage.Client | None = None
        self._lock = threading.Lock()

    def _get_client(self) -> storage.Client:
        """Created on first use, once: credentials are looked up when needed, not at import."""
        with self._lock:
            if self._client is None:
                self._client = _make_client()
            return self._client

    def _blob(self, url: str) -> storage.Blob:
        loc = ObjectURL.parse(url)
        if not loc.key:
            raise ConfigError(f"{url!r} names a bucket, not an object: use gs://bucket/key.")
        return self._get_client().bucket(loc.bucket).blob(loc.key)

    def download(self, url: str, path: str, timeout: float) -> None:
        with _translated(url, "download"):
            self._blob(url).download_to_filename(path, timeout=timeout, retry=None)

    def read_range(self, url: str, start: int, length: int, timeout: float) -> bytes:
        # The SDK checks no checksum on a 206 (the stored hash covers the whole object). A body
        # cut short in transit raises (transient); a range clipped at the end is caught below.
        with _translated(url, f"read {byte_span(start, length)} of"):
            data = self._blob(url).download_as_bytes(
                start=start, end=start + length - 1, timeout=timeout, retry=None
            )
        return checked_range(data, url, start, length)

    def upload(self, path: str, url: str, timeout: float) -> None:
        with _translated(url, "upload"):
            self._blob(url).upload_from_filename(path, timeout=timeout, retry=None)

    def list(self, url: str) -> list[str]:
        loc = ObjectURL.parse(url)
        with _translated(url, "list"):
            blobs = self._get_client().list_blobs(
                loc.bucket, prefix=loc.key or None, timeout=_METADATA_TIMEOUT, retry=None
            )
            names = [blob.name for blob in blobs]
        return sorted(f"gs://{loc.bucket}/{name}" for name in names)

    def size(self, url: str) -> int | None:
        with _translated(url, "stat"):
            blob = self._blob(url)
            blob.reload(timeout=_METADATA_TIMEOUT, retry=None)
        return None if blob.size is None else int(blob.size)
