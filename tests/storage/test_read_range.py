"""Ranged reads (``read_range``) on every backend, against real servers on 127.0.0.1 (moto,
gcp-storage-emulator, Azurite, the OCI test server) and local files, through the public
function so argument checks and retries are exercised as users see them."""

from __future__ import annotations

import http.client
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from streaming_lightning.errors import (
    RemoteNotFoundError,
    StorageError,
    TransientStorageError,
)
from streaming_lightning.storage import read_range, registry
from streaming_lightning.storage.base import Backend
from tests.fixtures.azure_server import Azurite, dev_connection_string
from tests.fixtures.fault_proxy import FaultProxy
from tests.fixtures.gcs_server import GCSEmulator
from tests.fixtures.oci_server import OCIHandle
from tests.fixtures.s3_server import S3Server
from tests.fixtures.servers import LOOPBACK

#: The object most tests read from: small, and not a repeating pattern.
DATA = np.random.default_rng(7).bytes(1000)


@dataclass
class Store:
    """One backend with a place to put objects, seeded through the service's own SDK (not the
    code under test). ``point_at`` re-points the backend at another port on loopback (a proxy
    in front of the server at ``port``), through the environment only."""

    url: Callable[[str], str]
    put: Callable[[str, bytes], None]
    port: int | None = None
    point_at: Callable[[int], None] | None = None

    def seed(self, key: str, data: bytes) -> str:
        self.put(key, data)
        return self.url(key)


def _port(endpoint: str) -> int:
    return int(endpoint.rstrip("/").rsplit(":", 1)[1])


def _local_store(request: pytest.FixtureRequest, tmp_path: Path, mp: pytest.MonkeyPatch) -> Store:
    def put(key: str, data: bytes) -> None:
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_bytes(data)

    return Store(lambda key: str(tmp_path / key), put)


def _file_url_store(
    request: pytest.FixtureRequest, tmp_path: Path, mp: pytest.MonkeyPatch
) -> Store:
    local = _local_store(request, tmp_path, mp)
    return Store(lambda key: f"file://{tmp_path / key}", local.put)


def _s3_store(request: pytest.FixtureRequest, tmp_path: Path, mp: pytest.MonkeyPatch) -> Store:
    s3: S3Server = request.getfixturevalue("s3")
    bucket, client = s3.new_bucket(), s3.client()

    def point_at(port: int) -> None:
        mp.setenv("S3_ENDPOINT_URL", f"http://{LOOPBACK}:{port}")

    return Store(
        lambda key: f"s3://{bucket}/{key}",
        lambda key, data: client.put_object(Bucket=bucket, Key=key, Body=data),
        _port(s3.endpoint),
        point_at,
    )


def _gcs_store(request: pytest.FixtureRequest, tmp_path: Path, mp: pytest.MonkeyPatch) -> Store:
    emulator: GCSEmulator = request.getfixturevalue("gcs_emulator")
    bucket = emulator.client().bucket(emulator.new_bucket())

    def point_at(port: int) -> None:
        mp.setenv("STORAGE_EMULATOR_HOST", f"http://{LOOPBACK}:{port}")

    return Store(
        lambda key: f"gs://{bucket.name}/{key}",
        lambda key, data: bucket.blob(key).upload_from_string(data),
        _port(emulator.url),
        point_at,
    )


def _azure_store(request: pytest.FixtureRequest, tmp_path: Path, mp: pytest.MonkeyPatch) -> Store:
    from azure.storage.blob import BlobServiceClient

    azurite: Azurite = request.getfixturevalue("azurite")
    container = azurite.create_container()
    service = BlobServiceClient.from_connection_string(azurite.connection_string)

    def point_at(port: int) -> None:
        mp.setenv("AZURE_STORAGE_CONNECTION_STRING", dev_connection_string(port))

    return Store(
        lambda key: f"azure://{container}/{key}",
        lambda key, data: service.get_blob_client(container, key).upload_blob(data, overwrite=True),
        azurite.port,
        point_at,
    )


def _oci_store(request: pytest.FixtureRequest, tmp_path: Path, mp: pytest.MonkeyPatch) -> Store:
    handle: OCIHandle = request.getfixturevalue("oci_server")

    def point_at(port: int) -> None:
        mp.setenv("OCI_ENDPOINT_URL", f"http://{LOOPBACK}:{port}")

    return Store(handle.url, handle.server.put, handle.server.port, point_at)


STORES = {
    "local": _local_store,
    "file-url": _file_url_store,
    "s3": _s3_store,
    "gcs": _gcs_store,
    "azure": _azure_store,
    "oci": _oci_store,
}
REMOTE = [name for name in STORES if name not in ("local", "file-url")]


@pytest.fixture(params=list(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    return STORES[request.param](request, tmp_path, monkeypatch)


@pytest.fixture(params=REMOTE)
def remote_store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Store:
    return STORES[request.param](request, tmp_path, monkeypatch)


def _retries(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("Retrying")]


# Every backend --------------------------------------------------------------------------------


def test_ranges_are_byte_exact(store: Store) -> None:
    url = store.seed("dir/obj.bin", DATA)
    for start, length in [(137, 400), (0, 10), (990, 10), (999, 1), (0, len(DATA))]:
        assert read_range(url, start, length) == DATA[start : start + length], (start, length)


@pytest.mark.parametrize(
    ("start", "length"),
    [(995, 10), (1000, 1), (5000, 8)],
    ids=["runs-past-the-end", "starts-at-the-end", "starts-past-the-end"],
)
def test_a_range_past_the_end_is_an_error_naming_url_and_range(
    store: Store, caplog: pytest.LogCaptureFixture, start: int, length: int
) -> None:
    url = store.seed("obj.bin", DATA)
    with pytest.raises(StorageError) as info:
        read_range(url, start, length, retry=5)
    assert type(info.value) is StorageError, "neither transient (retried) nor not-found"
    assert url in str(info.value)
    assert f"bytes {start}-{start + length - 1}" in str(info.value)
    assert _retries(caplog) == []


def test_any_range_of_an_empty_object_is_an_error(store: Store) -> None:
    url = store.seed("empty.bin", b"")
    with pytest.raises(StorageError, match=re.escape(f"bytes 0-3 of {url}")) as info:
        read_range(url, 0, 4, retry=5)
    assert type(info.value) is StorageError


def test_a_missing_object_is_not_found(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    store.seed("present.bin", DATA)
    url = store.url("absent.bin")
    with pytest.raises(RemoteNotFoundError, match=re.escape(url)):
        read_range(url, 0, 4, retry=5)
    assert _retries(caplog) == []


def test_length_zero_is_empty_without_a_request(store: Store) -> None:
    assert read_range(store.seed("obj.bin", DATA), 10, 0) == b""
    # Nothing is asked of the store, so even a missing object reads as empty.
    assert read_range(store.url("absent.bin"), 10**9, 0) == b""


@pytest.mark.parametrize(("start", "length"), [(-1, 4), (0, -1)])
def test_a_negative_start_or_length_is_a_value_error(start: int, length: int) -> None:
    with pytest.raises(ValueError, match="s3://bucket/key"):
        read_range("s3://bucket/key", start, length)


def test_a_truncated_body_is_retried_never_returned_short(
    remote_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy cuts responses mid-body: that is transient, so read again, not short data (a
    short result would be a plain StorageError, which is not retried, and fail the test)."""
    data = np.random.default_rng(3).bytes(256 << 10)
    url = remote_store.seed("big.bin", data)
    assert remote_store.port is not None and remote_store.point_at is not None
    # Seed 1 breaks the first connection; the range is longer than any cut (at most 64 KiB).
    proxy = FaultProxy(remote_store.port, fault_rate=0.5, seed=1, faults=("truncate",))
    try:
        remote_store.point_at(proxy.port)
        registry.reset_backends()
        got = read_range(url, 10_000, 200 << 10, retry=10, timeout=5)
    finally:
        proxy.close()
        registry.reset_backends()
    assert proxy.counts["truncate"] > 0, proxy.counts
    assert got == data[10_000 : 10_000 + (200 << 10)]


def test_a_backend_without_ranged_reads_says_so() -> None:
    class WriteOnly(Backend):
        def download(self, url: str, path: str, timeout: float) -> None: ...

        def upload(self, path: str, url: str, timeout: float) -> None: ...

        def list(self, url: str) -> list[str]:
            return []

    with pytest.raises(NotImplementedError, match=r"WriteOnly .*bytes 3-6 of x://b/k"):
        WriteOnly().read_range("x://b/k", 3, 4, 1.0)


def test_local_directory_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=re.escape(f"bytes 0-3 of {tmp_path}")):
        read_range(str(tmp_path), 0, 4)


# OCI: what went over the wire -----------------------------------------------------------------


def _object_gets(handle: OCIHandle) -> list[str]:
    """The Range header of every GetObject, in order."""
    return [r.range for r in handle.server.requests if r.method == "GET" and r.route == "object"]


def test_oci_asks_for_the_range_only(oci_server: OCIHandle) -> None:
    oci_server.server.put("obj.bin", DATA)
    assert read_range(oci_server.url("obj.bin"), 100, 50) == DATA[100:150]
    assert read_range(oci_server.url("obj.bin"), 100, 0) == b""
    assert _object_gets(oci_server) == ["bytes=100-149"]


def test_oci_unsatisfiable_range_is_asked_once(oci_server: OCIHandle) -> None:
    oci_server.server.put("obj.bin", DATA)
    url = oci_server.url("obj.bin")
    with pytest.raises(StorageError, match="starts at or past the end") as info:
        read_range(url, 1000, 5, retry=5)
    assert type(info.value) is StorageError and "InvalidRange" in str(info.value)
    assert _object_gets(oci_server) == ["bytes=1000-1004"]


def test_oci_transient_errors_are_retried(
    oci_server: OCIHandle, caplog: pytest.LogCaptureFixture
) -> None:
    oci_server.server.put("obj.bin", DATA)
    oci_server.server.fail(503, times=1, methods=("GET",))
    oci_server.server.truncate(times=1)
    with caplog.at_level(logging.WARNING):
        assert read_range(oci_server.url("obj.bin"), 5, 500, retry=3) == DATA[5:505]
    assert _object_gets(oci_server) == ["bytes=5-504"] * 3
    assert len(_retries(caplog)) == 2


@pytest.mark.parametrize(
    ("start", "length", "why"),
    [
        (3, 10, "the object from byte 0"),  # as long as asked for, but the wrong bytes
        (3, 4, "sent 10 bytes for a 4-byte range"),
    ],
)
def test_a_server_that_ignores_range_is_an_error(
    oci_server: OCIHandle, start: int, length: int, why: str
) -> None:
    oci_server.server.put("obj.bin", DATA[:10])
    oci_server.server.honour_ranges = False
    url = oci_server.url("obj.bin")
    with pytest.raises(StorageError, match=re.escape(why)) as info:
        read_range(url, start, length, retry=5)
    assert type(info.value) is StorageError and url in str(info.value)
    assert len(_object_gets(oci_server)) == 1
    # From byte 0, the whole object is the range asked for.
    assert read_range(url, 0, 10) == DATA[:10]


def test_oci_retries_run_out_with_a_transient_error(oci_server: OCIHandle) -> None:
    oci_server.server.put("obj.bin", DATA)
    oci_server.server.truncate(times=None)
    url = oci_server.url("obj.bin")
    with pytest.raises(TransientStorageError, match=re.escape(f"bytes 5-504 of {url}")):
        read_range(url, 5, 500, retry=1)
    assert len(_object_gets(oci_server)) == 2


# The OCI test server's Range handling (RFC 9110 14.2) --------------------------------------


@pytest.mark.parametrize(
    ("header", "status", "content_range", "body"),
    [
        ("bytes=2-5", 206, "bytes 2-5/16", bytes(range(2, 6))),
        ("bytes=10-", 206, "bytes 10-15/16", bytes(range(10, 16))),
        ("bytes=-4", 206, "bytes 12-15/16", bytes(range(12, 16))),
        ("bytes=-99", 206, "bytes 0-15/16", bytes(range(16))),
        ("bytes=10-99", 206, "bytes 10-15/16", bytes(range(10, 16))),
        ("bytes=15-15", 206, "bytes 15-15/16", b"\x0f"),
        ("bytes=16-20", 416, "bytes */16", None),
        ("bytes=-0", 416, "bytes */16", None),
        ("bytes=5-2", 200, None, bytes(range(16))),  # invalid: ignored
        ("items=0-1", 200, None, bytes(range(16))),  # not a bytes range: ignored
        ("bytes=0-1,4-5", 400, None, None),  # multipart answers are outside the subset
    ],
)
def test_oci_server_answers_ranges_as_http_says(
    oci_server: OCIHandle, header: str, status: int, content_range: str | None, body: bytes | None
) -> None:
    oci_server.server.put("obj", bytes(range(16)))
    auth = f'Signature version="1",keyId="{oci_server.credentials.key_id}"'
    conn = http.client.HTTPConnection(LOOPBACK, oci_server.server.port, timeout=10)
    try:
        path = f"/n/{oci_server.server.namespace}/b/{oci_server.bucket}/o/obj"
        conn.request("GET", path, headers={"Authorization": auth, "Range": header})
        response = conn.getresponse()
        payload = response.read()
        assert response.status == status
        assert response.getheader("Content-Range") == content_range
        if body is not None:
            assert payload == body
            assert int(response.getheader("Content-Length") or -1) == len(body)
        if status == 416:
            assert b"InvalidRange" in payload
        conn.request("HEAD", path, headers={"Authorization": auth, "Range": header})
        head = conn.getresponse()
        head.read()
        assert head.status == 200 and head.getheader("Content-Length") == "16"
    finally:
        conn.close()
