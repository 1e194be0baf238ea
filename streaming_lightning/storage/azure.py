"""Azure Blob Storage (``azure://container/key`` and ``az://container/key``) through
azure-storage-blob.

Configured the way Azure users already configure the ``az`` CLI and mosaicml-streaming, first
match wins:

1. ``AZURE_STORAGE_CONNECTION_STRING`` — a full connection string (also the way to reach
   Azurite or another emulator).
2. An account name from ``AZURE_STORAGE_ACCOUNT`` (az CLI) or ``AZURE_ACCOUNT_NAME``
   (mosaicml-streaming) with a shared key from ``AZURE_STORAGE_KEY`` or
   ``AZURE_ACCOUNT_ACCESS_KEY``, or with a SAS token from ``AZURE_STORAGE_SAS_TOKEN``.
3. The account name alone: Microsoft Entra ID sign-in through ``DefaultAzureCredential``
   (environment service principal, workload/managed identity, ``az login`` ...).

The endpoint is ``https://{account}.blob.core.windows.net`` unless
``AZURE_STORAGE_SERVICE_ENDPOINT`` (the az CLI's variable behind ``--blob-endpoint``) names
another one: a sovereign cloud, a private endpoint, or an emulator.

The SDK's own retries are switched off: :mod:`.transfer` retries every backend the same way.
Secrets never appear in our messages, and SDK exceptions are not chained onto ours because their
text can carry a SAS signature from the request URL.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    IncompleteReadError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobClient, BlobServiceClient

from streaming_lightning.errors import (
    ConfigError,
    MissingExtraError,
    RemoteNotFoundError,
    RemotePermissionError,
    StorageError,
    TransientStorageError,
)
from streaming_lightning.storage.base import (
    Backend,
    ObjectURL,
    byte_span,
    checked_range,
    content_range_total,
    status_error,
)

_CONNECTION_STRING = "AZURE_STORAGE_CONNECTION_STRING"
_ACCOUNT_VARS = ("AZURE_STORAGE_ACCOUNT", "AZURE_ACCOUNT_NAME")
_KEY_VARS = ("AZURE_STORAGE_KEY", "AZURE_ACCOUNT_ACCESS_KEY")
_SAS_VAR = "AZURE_STORAGE_SAS_TOKEN"
_ENDPOINT_VAR = "AZURE_STORAGE_SERVICE_ENDPOINT"
_SECRET_VARS = (_CONNECTION_STRING, *_KEY_VARS, _SAS_VAR)

_HOW_TO_CONFIGURE = (
    f"Set {_CONNECTION_STRING}; or {_ACCOUNT_VARS[0]} (or {_ACCOUNT_VARS[1]}) with "
    f"{_KEY_VARS[0]} (or {_KEY_VARS[1]}) or {_SAS_VAR}; or {_ACCOUNT_VARS[0]} alone to sign in "
    f"with DefaultAzureCredential (az login, managed identity, AZURE_CLIENT_ID...). "
    f"{_ENDPOINT_VAR} overrides https://ACCOUNT.blob.core.windows.net."
)

#: Secret-bearing fields as they appear in connection strings and SAS query strings.
_SECRET_FIELDS = re.compile(r"(AccountKey|SharedAccessSignature|sig)=[^;&\s'\"]+", re.IGNORECASE)
#: Default per-operation timeout for calls without one in the Backend contract (list, stat).
_METADATA_TIMEOUT = 60.0


def _env(*names: str) -> str | None:
    """The first of ``names`` set to a non-empty value."""
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def _redact(text: str) -> str:
    """Remove anything secret from SDK text before it goes into one of our messages."""
    text = _SECRET_FIELDS.sub(r"\1=***", text)
    for name in _SECRET_VARS:
        value = os.environ.get(name)
        if value and len(value) >= 8:
            text = text.replace(value, "***")
    return text


def _describe(err: HttpResponseError) -> str:
    """The service's error code and HTTP status: enough to diagnose, never a secret."""
    code = getattr(err, "error_code", None)
    code = getattr(code, "value", code)  # sometimes a StorageErrorCode enum, sometimes a str
    status = err.status_code
    parts = [str(part) for part in (code, status) if part]
    return f"Azure {' '.join(parts)}" if parts else f"Azure {type(err).__name__}"


@contextmanager
def _translated(url: str, verb: str) -> Iterator[None]:
    """Map azure-core errors onto our three kinds; messages carry the URL, never credentials."""
    try:
        yield
    except ResourceNotFoundError as err:
        raise RemoteNotFoundError(f"Cannot {verb} {url}: not found ({_describe(err)}).") from None
    except ClientAuthenticationError as err:
        if err.status_code is None:  # the credential itself failed before any request was sent
            first_line = (_redact(str(err)).splitlines() or [type(err).__name__])[0]
            detail = f"no token from the Azure credential: {first_line}"
        else:
            detail = _describe(err)
        raise RemotePermissionError(
            f"Cannot {verb} {url}: access denied ({detail}). {_HOW_TO_CONFIGURE}"
        ) from None
    except IncompleteReadError:
        raise TransientStorageError(f"Cannot {verb} {url}: connection closed mid-body.") from None
    except HttpResponseError as err:
        raise _from_status(err, url, verb) from None
    except (ServiceRequestError, ServiceResponseError, ConnectionError, TimeoutError) as err:
        raise TransientStorageError(
            f"Cannot {verb} {url}: {type(err).__name__}: {_redact(str(err))}"
        ) from None
    except AzureError as err:
        raise StorageError(
            f"Cannot {verb} {url}: {type(err).__name__}: {_redact(str(err))}"
        ) from None


def _from_status(err: HttpResponseError, url: str, verb: str) -> StorageError:
    """Classify an HTTP error the SDK did not give a specific type by its status code."""
    status = err.status_code or 0
    what = _describe(err)
    return status_error(status, url, verb, what, advice=_HOW_TO_CONFIGURE)


def _timeouts(timeout: float) -> dict[str, Any]:
    """Per-request transport timeouts: connecting, and each read from the socket.

    The SDK's ``timeout=`` is a server-side limit on the whole operation, which would fail a
    large but healthy transfer; the contract asks to bound each network operation instead.
    """
    return {"connection_timeout": timeout, "read_timeout": timeout}


def _client_options() -> dict[str, Any]:
    """No SDK retries (transfer.py retries), so a failure surfaces once, at once."""
    return {"retry_total": 0, **_timeouts(_METADATA_TIMEOUT)}


def _make_service(url: str) -> BlobServiceClient:
    """A service client from the environment, in the documented order of precedence."""
    connection_string = os.environ.get(_CONNECTION_STRING)
    if connection_string:
        try:
            return BlobServiceClient.from_connection_string(connection_string, **_client_options())
        except ValueError:
            raise ConfigError(
                f"Cannot reach {url}: {_CONNECTION_STRING} is not a valid Azure Storage "
                "connection string (AccountName=...;AccountKey=...;BlobEndpoint=...)."
            ) from None
    account = _env(*_ACCOUNT_VARS)
    endpoint = os.environ.get(_ENDPOINT_VAR) or (
        f"https://{account}.blob.core.windows.net" if account else None
    )
    if endpoint is None:
        raise RemotePermissionError(
            f"Cannot reach {url}: no Azure storage account configured. {_HOW_TO_CONFIGURE}"
        )
    credential = _credential(url, account)
    try:
        return BlobServiceClient(endpoint, credential=credential, **_client_options())
    except ValueError as err:  # e.g. a token credential over plain http
        raise ConfigError(
            f"Cannot reach {url}: the Azure endpoint {_redact(endpoint)} is unusable: "
            f"{_redact(str(err))}"
        ) from None


def _credential(url: str, account: str | None) -> Any:
    """Shared key, then SAS token, then Entra ID sign-in."""
    key = _env(*_KEY_VARS)
    if key:
        if not account:
            raise RemotePermissionError(
                f"Cannot reach {url}: an account key is set but no account name. "
                f"{_HOW_TO_CONFIGURE}"
            )
        return {"account_name": account, "account_key": key}
    sas = os.environ.get(_SAS_VAR)
    if sas:
        return sas.lstrip("?")
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError:
        raise MissingExtraError(
            f"Signing in to read {url} needs azure-identity: "
            "pip install 'streaming-lightning[azure]' (or set an account key or SAS token)."
        ) from None
    return DefaultAzureCredential()


class AzureBackend(Backend):
    schemes = ("azure", "az")
    extra = "azure"

    def __init__(self) -> None:
        self._service: BlobServiceClient | None = None
        self._lock = threading.Lock()

    def _client(self, url: str) -> BlobServiceClient:
        """Created on first use, once: credentials are read when needed, not at import."""
        with self._lock:
            if self._service is None:
                self._service = _make_service(url)
            return self._service

    def _blob(self, url: str) -> BlobClient:
        loc = ObjectURL.parse(url)
        return self._client(url).get_blob_client(loc.bucket, loc.key)

    def download(self, url: str, path: str, timeout: float) -> None:
        with _translated(url, "download"):
            downloader = self._blob(url).download_blob(**_timeouts(timeout))
            with open(path, "wb") as file:
                written = downloader.readinto(file)
        if written != downloader.size:
            raise TransientStorageError(
                f"Cannot download {url}: got {written} of {downloader.size} bytes."
            )

    def read_range(self, url: str, start: int, length: int, timeout: float) -> bytes:
        with _translated(url, f"read {byte_span(start, length)} of"):
            downloader = self._blob(url).download_blob(
                offset=start, length=length, **_timeouts(timeout)
            )
            data = downloader.readall()
        # The SDK clips a range that runs past the end; Content-Range still gives the size.
        total = content_range_total(downloader.properties.content_range)
        return checked_range(data, url, start, length, total=total)

    def upload(self, path: str, url: str, timeout: float) -> None:
        blob = self._blob(url)
        with _translated(url, "upload"), open(path, "rb") as file:
            blob.upload_blob(
                file, length=os.path.getsize(path), overwrite=True, **_timeouts(timeout)
            )

    def list(self, url: str) -> list[str]:
        loc = ObjectURL.parse(url)
        with _translated(url, "list"):
            container = self._client(url).get_container_client(loc.bucket)
            names = [blob.name for blob in container.list_blobs(name_starts_with=loc.key or None)]
        return sorted(f"{loc.scheme}://{loc.bucket}/{name}" for name in names)

    def size(self, url: str) -> int | None:
        with _translated(url, "stat"):
            properties = self._blob(url).get_blob_properties(**_timeouts(_METADATA_TIMEOUT))
        return int(properties.size)
