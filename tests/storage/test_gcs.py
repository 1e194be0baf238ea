"""GCS backend against a real GCS JSON API (gcp-storage-emulator on 127.0.0.1) through real
google-cloud-storage calls."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import google.auth.exceptions as gauth_errors
import numpy as np
import pytest
import requests
from google.api_core import exceptions as api_errors
from google.cloud.storage.exceptions import DataCorruption, InvalidResponse

from streaming_lightning.errors import (
    ConfigError,
    RemoteNotFoundError,
    RemotePermissionError,
    StorageError,
    TransientStorageError,
)
from streaming_lightning.storage import (
    download_file,
    gcs,
    list_objects,
    object_exists,
    registry,
    upload_file,
)
from streaming_lightning.storage.gcs import GCSBackend, _translated
from tests.fixtures import fault_proxy
from tests.fixtures.fault_proxy import FaultProxy
from tests.fixtures.gcs_server import (
    GCSEmulator,
    gcs_emulator_fixture,  # noqa: F401  (requested as gcs_emulator)
    gcs_emulator_server_fixture,  # noqa: F401  (requested as gcs_emulator_server)
)
from tests.fixtures.servers import LOOPBACK, free_port


def _file(path: Path, size: int, seed: int = 0) -> bytes:
    data = np.random.default_rng(seed).bytes(size)
    path.write_bytes(data)
    return data


def test_upload_download_round_trip(gcs_emulator: GCSEmulator, tmp_path: Path) -> None:
    bucket = gcs_emulator.new_bucket()
    big = _file(tmp_path / "big", 9 << 20)  # above the SDK's 8 MiB multipart limit: resumable
    small = _file(tmp_path / "small", 3 << 20, seed=1)  # a single multipart request
    _file(tmp_path / "empty", 0)
    for name in ("big", "small", "empty"):
        upload_file(str(tmp_path / name), f"gs://{bucket}/data/{name}.bin")
    for name, expected in (("big", big), ("small", small), ("empty", b"")):
        out = str(tmp_path / "out" / name)
        assert download_file(f"gs://{bucket}/data/{name}.bin", out) == out
        assert Path(out).read_bytes() == expected
    assert registry.get_backend(f"gs://{bucket}/x").size(f"gs://{bucket}/data/big.bin") == len(big)
    assert sorted(os.listdir(tmp_path / "out")) == [".locks", "big", "empty", "small"]


def test_upload_overwrites(gcs_emulator: GCSEmulator, tmp_path: Path) -> None:
    bucket = gcs_emulator.new_bucket()
    url = f"gs://{bucket}/obj"
    _file(tmp_path / "a", 1000, seed=1)
    second = _file(tmp_path / "b", 500, seed=2)
    upload_file(str(tmp_path / "a"), url)
    upload_file(str(tmp_path / "b"), url)
    download_file(url, str(tmp_path / "out"))
    assert (tmp_path / "out").read_bytes() == second


def test_list_with_prefix_and_exists(gcs_emulator: GCSEmulator, tmp_path: Path) -> None:
    bucket = gcs_emulator.new_bucket()
    _file(tmp_path / "f", 10)
    keys = ["data/b.bin", "data/a.bin", "data/sub/c.bin", "database.bin", "other/d.bin"]
    for key in keys:
        upload_file(str(tmp_path / "f"), f"gs://{bucket}/{key}")
    # Prefix semantics (as in the GCS API), not directory semantics: "data" matches database.bin.
    assert list_objects(f"gs://{bucket}/data") == [
        f"gs://{bucket}/data/a.bin",
        f"gs://{bucket}/data/b.bin",
        f"gs://{bucket}/data/sub/c.bin",
        f"gs://{bucket}/database.bin",
    ]
    assert list_objects(f"gs://{bucket}/data/") == [
        f"gs://{bucket}/data/a.bin",
        f"gs://{bucket}/data/b.bin",
        f"gs://{bucket}/data/sub/c.bin",
    ]
    assert list_objects(f"gs://{bucket}") == sorted(f"gs://{bucket}/{key}" for key in keys)
    assert list_objects(f"gs://{bucket}/nothing-here") == []
    assert object_exists(f"gs://{bucket}/data/a.bin")
    assert not object_exists(f"gs://{bucket}/data/nope.bin")
    assert not object_exists(f"gs://{bucket}/data"), "a prefix is not an object"


def test_missing_object_fails_fast_and_names_the_url(
    gcs_emulator: GCSEmulator, tmp_path: Path
) -> None:
    bucket = gcs_emulator.new_bucket()
    start = time.monotonic()
    with pytest.raises(RemoteNotFoundError, match=f"gs://{bucket}/missing.mds"):
        download_file(f"gs://{bucket}/missing.mds", str(tmp_path / "x"), retry=3)
    assert time.monotonic() - start < 2, "a 404 must not be retried"
    with pytest.raises(RemoteNotFoundError, match="gs://no-such-bucket-here/x"):
        download_file("gs://no-such-bucket-here/x", str(tmp_path / "y"), retry=3)
    with pytest.raises(RemoteNotFoundError, match="gs://no-such-bucket-here/"):
        list_objects("gs://no-such-bucket-here/", retry=3)
    assert sorted(os.listdir(tmp_path)) == [".locks"], "no temp or partial files are left"
    assert not os.path.exists(tmp_path / "x")


def test_upload_to_missing_bucket_is_not_found(gcs_emulator: GCSEmulator, tmp_path: Path) -> None:
    _file(tmp_path / "f", 100)
    start = time.monotonic()
    with pytest.raises(RemoteNotFoundError, match="gs://no-such-bucket-here/k"):
        upload_file(str(tmp_path / "f"), "gs://no-such-bucket-here/k", retry=3)
    assert time.monotonic() - start < 2, "a 404 must not be retried"


def test_two_threads_download_the_same_file(
    gcs_emulator: GCSEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = gcs_emulator.new_bucket()
    data = _file(tmp_path / "src", 4 << 20, seed=3)
    url = f"gs://{bucket}/shard.00000.mds"
    upload_file(str(tmp_path / "src"), url)
    calls: list[str] = []
    real_download = GCSBackend.download

    def counting(self, u, path, timeout):  # type: ignore[no-untyped-def]
        calls.append(u)
        real_download(self, u, path, timeout)

    monkeypatch.setattr(GCSBackend, "download", counting)
    dest = str(tmp_path / "cache" / "shard.00000.mds")
    barrier = threading.Barrier(2)
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        barrier.wait(10)
        try:
            results.append(download_file(url, dest))
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
        assert not thread.is_alive()
    assert errors == [] and results == [dest, dest]
    assert len(calls) == 1, "the file lock makes the second thread reuse the first's download"
    assert Path(dest).read_bytes() == data
    assert sorted(os.listdir(tmp_path / "cache")) == [".locks", "shard.00000.mds"]


def test_unreachable_endpoint_is_transient_and_retried(
    gcs_emulator: GCSEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://{LOOPBACK}:{free_port()}")  # closed
    registry.reset_backends()
    start = time.monotonic()
    with pytest.raises(TransientStorageError) as info:
        download_file("gs://bucket/key", str(tmp_path / "x"), retry=1, timeout=2)
    assert time.monotonic() - start < 10
    assert isinstance(info.value, StorageError)
    message = str(info.value)
    assert "gs://bucket/key" in message and "2 attempts" in message
    assert sorted(os.listdir(tmp_path)) == [".locks"], "no temp or partial files are left"


def test_no_credentials_gives_advice(
    gcs_emulator: GCSEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without an emulator the default chain runs; a key file that is not there stops it before
    # it would ask any server (the GCE metadata server) for credentials.
    monkeypatch.delenv("STORAGE_EMULATOR_HOST")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-such-key.json"))
    registry.reset_backends()
    start = time.monotonic()
    with pytest.raises(RemotePermissionError, match="no usable Google Cloud credentials") as info:
        download_file("gs://bucket/key", str(tmp_path / "x"), retry=3)
    assert time.monotonic() - start < 2, "missing credentials are not retried"
    assert "gs://bucket/key" in str(info.value)
    assert "GOOGLE_APPLICATION_CREDENTIALS" in str(info.value)


def test_bucket_url_without_object_is_a_config_error(
    gcs_emulator: GCSEmulator, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="gs://bucket/"):
        download_file("gs://bucket/", str(tmp_path / "x"))
    with pytest.raises(ConfigError, match="gs:///key"):
        list_objects("gs:///key")


@pytest.mark.parametrize("fault", fault_proxy.FAULTS)
def test_transfers_survive_network_faults(
    gcs_emulator: GCSEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
) -> None:
    """Dropped, stalled and truncated exchanges are classified transient and retried."""
    bucket = gcs_emulator.new_bucket()
    payloads = {f"obj{i}": _file(tmp_path / f"src{i}", 150_000 + 70_000 * i, i) for i in range(3)}
    for i, name in enumerate(payloads):
        upload_file(str(tmp_path / f"src{i}"), f"gs://{bucket}/{name}")
    # list() has no timeout argument in the Backend contract; bound its stalls too.
    monkeypatch.setattr(gcs, "_METADATA_TIMEOUT", 1.0)
    port = int(gcs_emulator.url.rsplit(":", 1)[1])
    proxy = FaultProxy(port, fault_rate=0.5, seed=3, stall_limit_s=5, faults=(fault,))
    try:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
        registry.reset_backends()
        upload_file(str(tmp_path / "src0"), f"gs://{bucket}/copy", retry=10, timeout=1)
        for name in payloads:
            download_file(
                f"gs://{bucket}/{name}", str(tmp_path / "out" / name), retry=10, timeout=1
            )
        listed = list_objects(f"gs://{bucket}/obj", retry=10)
    finally:
        proxy.close()
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.url)
        registry.reset_backends()
    assert proxy.counts[fault] > 0, proxy.counts
    assert listed == [f"gs://{bucket}/{name}" for name in payloads]
    for name, data in payloads.items():
        assert (tmp_path / "out" / name).read_bytes() == data
    download_file(f"gs://{bucket}/copy", str(tmp_path / "copy"))
    assert (tmp_path / "copy").read_bytes() == payloads["obj0"]
    assert sorted(os.listdir(tmp_path / "out")) == [".locks", *payloads]


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (api_errors.Forbidden("denied"), RemotePermissionError),
        (api_errors.Unauthorized("bad token"), RemotePermissionError),
        (gauth_errors.RefreshError("invalid_grant"), RemotePermissionError),
        (gauth_errors.RefreshError("metadata busy", retryable=True), TransientStorageError),
        (api_errors.TooManyRequests("slow down"), TransientStorageError),
        (api_errors.InternalServerError("oops"), TransientStorageError),
        (api_errors.ServiceUnavailable("busy"), TransientStorageError),
        (api_errors.BadGateway("proxy"), TransientStorageError),
        (api_errors.GatewayTimeout("slow"), TransientStorageError),
        (api_errors.from_http_status(408, "request timeout"), TransientStorageError),
        (requests.exceptions.ChunkedEncodingError("cut"), TransientStorageError),
        (requests.exceptions.ReadTimeout("slow"), TransientStorageError),
        (DataCorruption(None, "checksum mismatch"), TransientStorageError),
        (InvalidResponse(None, "unexpected status"), TransientStorageError),
        (ConnectionResetError("reset"), TransientStorageError),
        (api_errors.BadRequest("bad"), StorageError),
    ],
)
def test_sdk_errors_the_emulator_cannot_produce_are_classified(
    raised: BaseException, expected: type[StorageError]
) -> None:
    """Statuses and failures the emulator never returns (auth, throttling, 5xx, corruption)."""
    url = "gs://bucket/some/key"
    with pytest.raises(StorageError) as info:
        with _translated(url, "download"):
            raise raised
    assert type(info.value) is expected
    assert url in str(info.value)
