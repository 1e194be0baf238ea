"""Amazon S3 and S3-compatible stores (MinIO, R2, moto) through boto3.

Configured the way boto3 users already configure it: the standard credential chain
(environment, shared config/credentials files, instance roles) and region. An endpoint for an
S3-compatible store comes from ``S3_ENDPOINT_URL`` (mosaicml-streaming's name) or
``AWS_ENDPOINT_URL`` (boto3's own). Anonymous access to public buckets: ``S3_ANONYMOUS=1``.
boto3's own retries are switched off: :mod:`..transfer` retries every backend the same way.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import botocore.exceptions as bce
from boto3.exceptions import S3UploadFailedError
from botocore.config import Config

from streaming_lightning.errors import (
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

_NOT_FOUND = {"404", "NoSuchKey", "NoSuchBucket", "NotFound"}
_DENIED = {
    "403",
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AllAccessDisabled",
    "ExpiredToken",
    "InvalidToken",
}
_TRANSIENT_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
    "503",
    "500",
    "502",
    "504",
}
#: Some S3-compatible stores answer InvalidRange with another status than 416.
_UNSATISFIABLE = {"InvalidRange"}
_TRANSIENT_EXCEPTIONS: tuple[type[BaseException], ...] = (
    bce.ConnectionError,
    bce.HTTPClientError,
    bce.IncompleteReadError,
    bce.ResponseStreamingError,
    ConnectionError,
    TimeoutError,
)

_CHUNK = 1 << 20


def _client_error(err: bce.ClientError, url: str, verb: str) -> StorageError:
    error = err.response.get("Error", {})
    code = str(error.get("Code", ""))
    status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    # S3-compatible stores do not always set the status a code implies; the code wins.
    if code in _NOT_FOUND:
        status = 404
    elif code in _DENIED:
        status = 403
    elif code in _TRANSIENT_CODES:
        status = 503
    elif code in _UNSATISFIABLE:
        status = 416
    return status_error(
        status, url, verb, f"S3 {code or status}", detail=str(error.get("Message", ""))
    )


@contextmanager
def _translated(url: str, verb: str) -> Iterator[None]:
    """Map botocore errors onto our three kinds; messages carry the URL, never credentials."""
    try:
        yield
    except bce.ClientError as err:
        raise _client_error(err, url, verb) from None
    except S3UploadFailedError as err:
        # boto3's transfer manager wraps the real ClientError; classify that one.
        inner = err.__context__
        if isinstance(inner, bce.ClientError):
            raise _client_error(inner, url, verb) from None
        raise TransientStorageError(f"Cannot {verb} {url}: {err}") from err
    except bce.NoCredentialsError:
        raise RemotePermissionError(
            f"Cannot {verb} {url}: no AWS credentials found. Configure them as for boto3 "
            "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or an instance role), or set "
            "S3_ANONYMOUS=1 for a public bucket."
        ) from None
    except bce.ParamValidationError as err:
        raise StorageError(f"Cannot {verb} {url}: invalid S3 request ({err}).") from None
    except _TRANSIENT_EXCEPTIONS as err:
        raise TransientStorageError(f"Cannot {verb} {url}: {type(err).__name__}: {err}") from err


class S3Backend(Backend):
    schemes = ("s3",)
    extra = "s3"

    def __init__(self) -> None:
        self._clients: dict[float, Any] = {}
        self._lock = threading.Lock()

    def _client(self, timeout: float) -> Any:
        """One client per timeout value; boto3 clients are thread-safe once created."""
        with self._lock:
            client = self._clients.get(timeout)
            if client is None:
                endpoint = (
                    os.environ.get("S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL") or None
                )
                config = Config(
                    connect_timeout=timeout,
                    read_timeout=timeout,
                    retries={"max_attempts": 1, "mode": "standard"},
                    max_pool_connections=64,
                )
                if os.environ.get("S3_ANONYMOUS") == "1":
                    from botocore import UNSIGNED

                    config = config.merge(Config(signature_version=UNSIGNED))
                client = boto3.session.Session().client("s3", endpoint_url=endpoint, config=config)
                self._clients[timeout] = client
        return client

    def download(self, url: str, path: str, timeout: float) -> None:
        loc = ObjectURL.parse(url)
        with _translated(url, "download"):
            response = self._client(timeout).get_object(Bucket=loc.bucket, Key=loc.key)
            body = response["Body"]
            expected = int(response.get("ContentLength", -1))
            written = 0
            with open(path, "wb") as file:
                for chunk in body.iter_chunks(_CHUNK):
                    written += file.write(chunk)
            if expected >= 0 and written != expected:
                raise TransientStorageError(
                    f"Cannot download {url}: got {written} of {expected} bytes."
                )

    def read_range(self, url: str, start: int, length: int, timeout: float) -> bytes:
        loc = ObjectURL.parse(url)
        with _translated(url, f"read {byte_span(start, length)} of"):
            response = self._client(timeout).get_object(
                Bucket=loc.bucket, Key=loc.key, Range=range_header(start, length)
            )
            body = response["Body"]
            sent = response.get("ContentLength")
            problem = range_response_error(
                url,
                start,
                length,
                sent=None if sent is None else int(sent),
                content_range=response.get("ContentRange"),
            )
            if problem is not None:
                body.close()
                raise problem
            data = body.read()  # botocore raises IncompleteReadError if the body is cut short
        return checked_range(data, url, start, length)

    def upload(self, path: str, url: str, timeout: float) -> None:
        loc = ObjectURL.parse(url)
        with _translated(url, "upload"):
            self._client(timeout).upload_file(path, loc.bucket, loc.key)

    def list(self, url: str) -> list[str]:
        loc = ObjectURL.parse(url)
        found: list[str] = []
        with _translated(url, "list"):
            pages = (
                self._client(60.0)
                .get_paginator("list_objects_v2")
                .paginate(Bucket=loc.bucket, Prefix=loc.key)
            )
            for page in pages:
                found.extend(f"s3://{loc.bucket}/{obj['Key']}" for obj in page.get("Contents", []))
        return sorted(found)

    def size(self, url: str) -> int | None:
        loc = ObjectURL.parse(url)
        with _translated(url, "stat"):
            head = self._client(60.0).head_object(Bucket=loc.bucket, Key=loc.key)
        return int(head["ContentLength"])
