"""Oracle Cloud Infrastructure Object Storage (``oci://bucket/key``) through the ``oci`` SDK.

Configured the way OCI CLI and SDK users already configure them, with API-key signing:

- The config file named by ``OCI_CONFIG_FILE`` (default ``~/.oci/config``, as written by
  ``oci setup config``), profile ``OCI_CLI_PROFILE`` (default ``DEFAULT``): user, tenancy,
  fingerprint, key_file and region. It is loaded and validated with ``oci.config``.
- ``OCI_NAMESPACE``: the tenancy's Object Storage namespace. Unset, it is asked of the
  service once per process (GetNamespace), which costs one request.
- ``OCI_ENDPOINT_URL`` (ours; the SDK has no such variable): an endpoint used instead of the
  region's ``https://objectstorage.{region}.oraclecloud.com``, e.g. a private endpoint, a
  dedicated region, or a test server on loopback.

Uploads are a single PutObject streamed from the file (OCI accepts up to 50 GiB in one), and a
failed one is retried whole. The SDK's own retries and circuit breaker are switched off:
:mod:`.transfer` retries every backend the same way, and a breaker opened by one bad file
would fail unrelated ones. Config problems are described by us, never with the SDK's text, so
no key material, passphrase or fingerprint reaches a message or a traceback.
"""

from __future__ import annotations

import configparser
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import oci
import urllib3.exceptions
from oci._vendor.requests import exceptions as sdk_http_errors

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
    range_header,
    range_response_error,
    status_error,
)

_CONFIG_FILE_VAR = "OCI_CONFIG_FILE"
_PROFILE_VAR = "OCI_CLI_PROFILE"
_ENDPOINT_VAR = "OCI_ENDPOINT_URL"
_NAMESPACE_VAR = "OCI_NAMESPACE"

_HOW_TO_CONFIGURE = (
    "Create a config with `oci setup config` (user, tenancy, fingerprint, key_file, region) "
    f"or point {_CONFIG_FILE_VAR} and {_PROFILE_VAR} at an existing one; see "
    "https://docs.oracle.com/iaas/Content/API/Concepts/sdkconfig.htm"
)

#: Default per-request timeout for calls without one in the Backend contract (list, stat).
_METADATA_TIMEOUT = 60.0
#: Bytes per write while streaming a download to disk.
_CHUNK = 1 << 20
#: Connections kept per host, so parallel shard downloads reuse sockets instead of reconnecting.
_POOL_SIZE = 64
#: Objects asked for per ListObjects page (the service's maximum).
_LIST_LIMIT = 1000
#: 409 codes that mean "try again" (a concurrent write or a lock), not a permanent conflict.
_TRANSIENT_CONFLICTS = {"ConcurrentObjectUpdate", "IncorrectState", "LockConflict"}
#: Request errors that are our mistake (a malformed URL or header), so retrying cannot help.
_PERMANENT_REQUEST_ERRORS: tuple[type[BaseException], ...] = (
    sdk_http_errors.URLRequired,
    sdk_http_errors.MissingSchema,
    sdk_http_errors.InvalidSchema,
    sdk_http_errors.InvalidURL,
    sdk_http_errors.InvalidHeader,
)
_TRANSIENT_NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    # oci.exceptions.RequestException and ConnectTimeout subclass the vendored requests'
    # RequestException, as do errors raised while iterating a streamed body.
    sdk_http_errors.RequestException,
    urllib3.exceptions.HTTPError,  # raw body streaming goes through urllib3 directly
    ConnectionError,
    TimeoutError,
)


def _config_location() -> tuple[str, str]:
    """The config file and profile the OCI CLI would use."""
    path = os.environ.get(_CONFIG_FILE_VAR) or oci.config.DEFAULT_LOCATION
    return path, os.environ.get(_PROFILE_VAR) or oci.config.DEFAULT_PROFILE


def _describe_config_error(err: Exception) -> str:
    """What is wrong with the config, in our words: the SDK's text can quote file lines."""
    if isinstance(err, oci.exceptions.ConfigFileNotFound):
        return "the file does not exist"
    if isinstance(err, oci.exceptions.ProfileNotFound):
        return "the profile is not in it"
    if isinstance(err, oci.exceptions.InvalidConfig):
        problems = getattr(err, "errors", None)
        if isinstance(problems, dict) and problems:
            # {"fingerprint": "malformed", "region": "missing"}: names and verdicts only.
            return ", ".join(f"{key} is {verdict}" for key, verdict in sorted(problems.items()))
        return "it is invalid"
    if isinstance(err, oci.exceptions.InvalidKeyFilePath):
        return "its key_file does not exist"
    if isinstance(err, oci.exceptions.MissingPrivateKeyPassphrase):
        return "its key_file is encrypted and no pass_phrase is given"
    if isinstance(err, oci.exceptions.InvalidPrivateKey):
        return "its key_file is not a usable private key, or the pass_phrase is wrong"
    if isinstance(err, configparser.Error):
        return "it is not an INI file with [PROFILE] sections"
    return f"it could not be used ({type(err).__name__})"


def _load_config(url: str) -> dict[str, Any]:
    """The validated profile, or a :class:`RemotePermissionError` saying what to fix."""
    path, profile = _config_location()
    try:
        config: dict[str, Any] = oci.config.from_file(path, profile)
        oci.config.validate_config(config)
    except (oci.exceptions.ClientError, configparser.Error, ValueError, OSError) as err:
        raise _config_error(url, err) from None
    return config


def _config_error(url: str, err: Exception) -> RemotePermissionError:
    path, profile = _config_location()
    return RemotePermissionError(
        f"Cannot access {url}: OCI config profile [{profile}] in {os.path.expanduser(path)} "
        f"is unusable: {_describe_config_error(err)}. {_HOW_TO_CONFIGURE}"
    )


def _make_client(config: dict[str, Any], timeout: float, url: str) -> Any:
    """A client with our timeouts and no SDK retries; reads the private key, sends nothing."""
    kwargs: dict[str, Any] = {
        "timeout": (timeout, timeout),  # (connect, read): each network operation is bounded
        "retry_strategy": oci.retry.NoneRetryStrategy(),
        "circuit_breaker_strategy": oci.circuit_breaker.NoCircuitBreakerStrategy(),
    }
    endpoint = _endpoint(url)
    if endpoint:
        kwargs["service_endpoint"] = endpoint
    try:
        client = oci.object_storage.ObjectStorageClient(config, **kwargs)
    except (oci.exceptions.ClientError, ValueError, OSError) as err:
        raise _config_error(url, err) from None
    _widen_connection_pool(client)
    return client


def _endpoint(url: str) -> str | None:
    """``OCI_ENDPOINT_URL`` if set, checked now: the SDK would only object on every request."""
    endpoint = os.environ.get(_ENDPOINT_VAR) or None
    if endpoint is not None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/"):
            raise ConfigError(
                f"Cannot access {url}: {_ENDPOINT_VAR}={endpoint!r} is not an endpoint URL "
                "like https://host[:port]."
            )
    return endpoint


def _widen_connection_pool(client: Any) -> None:
    """requests keeps 10 connections per host; shard downloads run more threads than that.

    Replaces each mounted adapter with one of the same class (the SDK's HTTPS adapter carries
    its Expect: 100-continue handling) and a bigger pool, as the SDK's UploadManager does.
    """
    session = getattr(getattr(client, "base_client", None), "session", None)
    adapters = getattr(session, "adapters", None)
    if session is None or not isinstance(adapters, dict):
        return
    for prefix, adapter in list(adapters.items()):
        try:
            wider = type(adapter)(
                pool_connections=_POOL_SIZE,
                pool_maxsize=_POOL_SIZE,
                max_retries=adapter.max_retries,
            )
        except (TypeError, AttributeError):  # not a requests HTTPAdapter: leave it alone
            continue
        session.mount(prefix, wider)


def _from_service_error(err: Any, url: str, verb: str) -> StorageError:
    """Classify an error response by HTTP status and OCI error code."""
    status = int(getattr(err, "status", 0) or 0)
    code = str(getattr(err, "code", "") or "")
    what = f"OCI {status} {code}".strip()
    request_id = getattr(err, "request_id", None)
    if request_id:
        what += f", opc-request-id {request_id}"
    if code == "NotAuthorizedOrNotFound":
        # OCI answers 404, not 403, when a policy hides the bucket.
        what += "; it may exist but be hidden from this user"
    if status == 409 and code in _TRANSIENT_CONFLICTS:
        status = 503
    path, profile = _config_location() if status in (401, 403) else ("", "")
    advice = (
        f"Check that the API key of profile [{profile}] in {os.path.expanduser(path)} is uploaded "
        "for its user and that an IAM policy lets that user read and write objects in this bucket."
    )
    return status_error(
        status, url, verb, what, advice=advice, detail=str(getattr(err, "message", "") or "")
    )


def _request_error(err: BaseException, url: str, verb: str) -> StorageError:
    """A request that got no response: transient unless the request itself was malformed."""
    # oci.exceptions.RequestException wraps the original requests exception as args[0].
    cause = err.args[0] if err.args and isinstance(err.args[0], BaseException) else err
    text = f"{type(cause).__name__}: {cause}"
    if isinstance(cause, _PERMANENT_REQUEST_ERRORS):
        return StorageError(f"Cannot {verb} {url}: invalid request ({text}).")
    return TransientStorageError(f"Cannot {verb} {url}: {text}")


@contextmanager
def _translated(url: str, verb: str) -> Iterator[None]:
    """Map SDK, HTTP and socket errors onto our three kinds; every message names ``url``."""
    try:
        yield
    except oci.exceptions.ServiceError as err:
        raise _from_service_error(err, url, verb) from None
    except _TRANSIENT_NETWORK_ERRORS as err:
        raise _request_error(err, url, verb) from err


class OCIBackend(Backend):
    schemes = ("oci",)
    extra = "oci"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._config: dict[str, Any] | None = None
        self._namespace: str | None = None
        # One client per timeout value (in practice two: transfers and metadata calls); the
        # SDK fixes timeouts per client, and its clients are safe to share between threads.
        self._clients: dict[float, Any] = {}

    def _client(self, url: str, timeout: float) -> tuple[Any, str]:
        """The client and namespace, made on first use: config is read when needed, not at
        import, and a failure is not cached (the next call tries again)."""
        with self._lock:
            if self._config is None:
                self._config = _load_config(url)
            client = self._clients.get(timeout)
            if client is None:
                client = _make_client(self._config, timeout, url)
                self._clients[timeout] = client
            if self._namespace is None:
                self._namespace = os.environ.get(_NAMESPACE_VAR) or str(client.get_namespace().data)
            return client, self._namespace

    @staticmethod
    def _object(url: str) -> ObjectURL:
        loc = ObjectURL.parse(url)
        if not loc.key:
            raise ConfigError(f"{url!r} names a bucket, not an object: use oci://bucket/key.")
        return loc

    def download(self, url: str, path: str, timeout: float) -> None:
        loc = self._object(url)
        with _translated(url, "download"):
            client, namespace = self._client(url, timeout)
            response = client.get_object(namespace, loc.bucket, loc.key)
            expected = int(response.headers.get("Content-Length", -1))
            written = _stream_to_file(response.data, path)
        if expected >= 0 and written != expected:
            raise TransientStorageError(
                f"Cannot download {url}: got {written} of {expected} bytes."
            )

    def read_range(self, url: str, start: int, length: int, timeout: float) -> bytes:
        loc = self._object(url)
        span = byte_span(start, length)
        with _translated(url, f"read {span} of"):
            client, namespace = self._client(url, timeout)
            response = client.get_object(
                namespace, loc.bucket, loc.key, range=range_header(start, length)
            )
            header = response.headers.get("Content-Length")
            sent = None if header is None else int(header)
            problem = range_response_error(
                url, start, length, sent=sent, content_range=response.headers.get("Content-Range")
            )
            if problem is not None:
                response.data.close()
                raise problem
            data = _read_body(response.data)
        if sent is not None and len(data) != sent:
            raise TransientStorageError(
                f"Cannot read {span} of {url}: got {len(data)} of {sent} bytes."
            )
        return checked_range(data, url, start, length)

    def upload(self, path: str, url: str, timeout: float) -> None:
        loc = self._object(url)
        with _translated(url, "upload"), open(path, "rb") as file:
            client, namespace = self._client(url, timeout)
            client.put_object(namespace, loc.bucket, loc.key, file)

    def list(self, url: str) -> list[str]:
        loc = ObjectURL.parse(url)
        with _translated(url, "list"):
            client, namespace = self._client(url, _METADATA_TIMEOUT)
            names = _list_names(client, namespace, loc.bucket, loc.key, url)
        return sorted(f"oci://{loc.bucket}/{name}" for name in names)

    def size(self, url: str) -> int | None:
        loc = self._object(url)
        with _translated(url, "stat"):
            client, namespace = self._client(url, _METADATA_TIMEOUT)
            head = client.head_object(namespace, loc.bucket, loc.key)
        length = head.headers.get("Content-Length")
        return int(length) if length is not None else None


def _read_body(body: Any) -> bytes:
    """A streamed requests response's body as stored (no content decoding)."""
    try:
        return b"".join(body.raw.stream(_CHUNK, decode_content=False))
    finally:
        body.close()


def _stream_to_file(body: Any, path: str) -> int:
    """Copy a streamed requests response to ``path`` as stored (no content decoding)."""
    written = 0
    try:
        with open(path, "wb") as file:
            for chunk in body.raw.stream(_CHUNK, decode_content=False):
                written += file.write(chunk)
    finally:
        body.close()
    return written


def _list_names(client: Any, namespace: str, bucket: str, prefix: str, url: str) -> list[str]:
    """Every object name under ``prefix``, following ``nextStartWith`` across pages."""
    names: list[str] = []
    start: str | None = None
    while True:
        kwargs: dict[str, Any] = {"fields": "name", "limit": _LIST_LIMIT}
        if prefix:
            kwargs["prefix"] = prefix
        if start is not None:
            kwargs["start"] = start
        page = client.list_objects(namespace, bucket, **kwargs).data
        names.extend(obj.name for obj in page.objects or [])
        following = page.next_start_with
        if not following:
            return names
        if start is not None and following <= start:
            raise StorageError(f"Cannot list {url}: the service's pagination did not advance.")
        start = following
