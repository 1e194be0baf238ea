"""The Azure Blob backend against a real Azurite server on 127.0.0.1, through the public
transfer functions (so retries, atomic writes and locks are exercised as users see them)."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streaming_lightning.errors import (
    RemoteNotFoundError,
    RemotePermissionError,
    TransientStorageError,
)
from streaming_lightning.storage.registry import get_backend, reset_backends
from streaming_lightning.storage.transfer import (
    download_file,
    list_objects,
    object_exists,
    upload_file,
)
from tests.fixtures.azure_server import (  # noqa: F401  (pytest fixtures)
    AZURE_ENV_VARS,
    DEV_ACCOUNT,
    DEV_KEY,
    Azurite,
    azurite_fixture,
    azurite_server_fixture,
)
from tests.fixtures.servers import LOOPBACK, free_port

pytest.importorskip("azure.storage.blob")


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _leftovers(directory: Path) -> list[str]:
    """Files a failed download must not leave behind (lock files are expected and harmless)."""
    return sorted(
        str(p.relative_to(directory)) for p in directory.rglob("*") if ".locks" not in p.parts
    )


@pytest.mark.parametrize("scheme", ["azure", "az"])
@pytest.mark.parametrize("size", [0, 3 * 1024 * 1024 + 17])
def test_round_trip_is_byte_exact(azurite: Azurite, tmp_path: Path, scheme: str, size: int) -> None:
    container = azurite.create_container()
    data = os.urandom(size)
    url = f"{scheme}://{container}/dir/blob.bin"

    upload_file(str(_write(tmp_path / "src.bin", data)), url)
    dest = download_file(url, str(tmp_path / "out" / "blob.bin"), expected_bytes=size)

    assert Path(dest).read_bytes() == data
    assert get_backend(url).size(url) == size


def test_upload_overwrites(azurite: Azurite, tmp_path: Path) -> None:
    url = f"azure://{azurite.create_container()}/k"
    upload_file(str(_write(tmp_path / "a", b"first version")), url)
    upload_file(str(_write(tmp_path / "b", b"second")), url)

    assert Path(download_file(url, str(tmp_path / "got"))).read_bytes() == b"second"


@pytest.mark.parametrize("scheme", ["azure", "az"])
def test_list_with_prefix_is_sorted_and_keeps_scheme(
    azurite: Azurite, tmp_path: Path, scheme: str
) -> None:
    container = azurite.create_container()
    src = str(_write(tmp_path / "x", b"x"))
    for key in ["data/b/c", "data/a", "data2/x", "other/y"]:
        upload_file(src, f"{scheme}://{container}/{key}")

    assert list_objects(f"{scheme}://{container}/data") == [
        f"{scheme}://{container}/data/a",
        f"{scheme}://{container}/data/b/c",
        f"{scheme}://{container}/data2/x",
    ]
    assert list_objects(f"{scheme}://{container}/data/") == [
        f"{scheme}://{container}/data/a",
        f"{scheme}://{container}/data/b/c",
    ]
    assert len(list_objects(f"{scheme}://{container}/")) == 4
    assert list_objects(f"{scheme}://{container}/nothing-here") == []


def test_object_exists(azurite: Azurite, tmp_path: Path) -> None:
    container = azurite.create_container()
    upload_file(str(_write(tmp_path / "x", b"x")), f"az://{container}/present")

    assert object_exists(f"az://{container}/present") is True
    assert object_exists(f"az://{container}/absent") is False
    assert object_exists(f"az://{container}/pres") is False  # a prefix is not an object
    assert object_exists("az://no-such-container-here/present") is False


@pytest.mark.parametrize("what", ["blob", "container"])
def test_missing_fails_fast_without_retries(
    azurite: Azurite, tmp_path: Path, caplog: pytest.LogCaptureFixture, what: str
) -> None:
    container = azurite.create_container() if what == "blob" else "no-such-container"
    url = f"azure://{container}/missing/blob.bin"
    dest = tmp_path / "blob.bin"

    started = time.monotonic()
    with caplog.at_level(logging.WARNING), pytest.raises(RemoteNotFoundError) as info:
        download_file(url, str(dest), retry=3)

    assert time.monotonic() - started < 2.0
    assert url in str(info.value)
    assert "Retrying" not in caplog.text
    assert not dest.exists()
    assert _leftovers(tmp_path) == []


def test_two_threads_download_same_destination(azurite: Azurite, tmp_path: Path) -> None:
    data = os.urandom(2 * 1024 * 1024)
    url = f"azure://{azurite.create_container()}/shard.mds"
    upload_file(str(_write(tmp_path / "src", data)), url)
    dest = str(tmp_path / "cache" / "shard.mds")
    results: list[str] = []
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            results.append(download_file(url, dest))
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert results == [dest, dest]
    assert Path(dest).read_bytes() == data
    assert _leftovers(tmp_path / "cache") == ["shard.mds"]


def test_account_key_and_endpoint_from_environment(
    azurite: Azurite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """mosaicml-streaming's variable names, with the endpoint override, reach the same data."""
    url = f"azure://{azurite.create_container()}/k"
    upload_file(str(_write(tmp_path / "src", b"payload")), url)
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    monkeypatch.setenv("AZURE_ACCOUNT_NAME", DEV_ACCOUNT)
    monkeypatch.setenv("AZURE_ACCOUNT_ACCESS_KEY", DEV_KEY)
    monkeypatch.setenv("AZURE_STORAGE_SERVICE_ENDPOINT", azurite.endpoint)
    reset_backends()

    assert Path(download_file(url, str(tmp_path / "got"))).read_bytes() == b"payload"


def test_sas_token_from_environment(
    azurite: Azurite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from datetime import datetime, timedelta, timezone

    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    container = azurite.create_container()
    upload_file(str(_write(tmp_path / "src", b"via sas")), f"azure://{container}/k")
    sas = generate_container_sas(
        DEV_ACCOUNT,
        container,
        account_key=DEV_KEY,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=datetime.now(timezone.utc) + timedelta(hours=1),
    )
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT", DEV_ACCOUNT)
    monkeypatch.setenv("AZURE_STORAGE_SAS_TOKEN", sas)
    monkeypatch.setenv("AZURE_STORAGE_SERVICE_ENDPOINT", azurite.endpoint)
    reset_backends()

    assert (
        Path(download_file(f"azure://{container}/k", str(tmp_path / "got"))).read_bytes()
        == b"via sas"
    )
    assert list_objects(f"azure://{container}/") == [f"azure://{container}/k"]


def test_wrong_key_is_permission_error_without_the_key(
    azurite: Azurite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = f"azure://{azurite.create_container()}/k"
    upload_file(str(_write(tmp_path / "src", b"x")), url)
    wrong_key = DEV_KEY[::-1]
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT", DEV_ACCOUNT)
    monkeypatch.setenv("AZURE_STORAGE_KEY", wrong_key)
    monkeypatch.setenv("AZURE_STORAGE_SERVICE_ENDPOINT", azurite.endpoint)
    reset_backends()

    started = time.monotonic()
    with pytest.raises(RemotePermissionError) as info:
        download_file(url, str(tmp_path / "got"), retry=3)

    assert time.monotonic() - started < 2.0
    message = str(info.value)
    assert url in message
    assert wrong_key not in message and DEV_KEY not in message
    assert _leftovers(tmp_path) == ["src"]


@pytest.fixture
def no_azure_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in AZURE_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    reset_backends()
    yield
    reset_backends()


@pytest.mark.usefixtures("no_azure_env")
@pytest.mark.parametrize("key_without_account", [False, True])
def test_missing_configuration_names_the_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, key_without_account: bool
) -> None:
    if key_without_account:
        monkeypatch.setenv("AZURE_STORAGE_KEY", DEV_KEY)
    url = "azure://container/some/blob"

    with pytest.raises(RemotePermissionError) as info:
        download_file(url, str(tmp_path / "blob"), retry=3)

    message = str(info.value)
    assert url in message
    for name in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY"):
        assert name in message
    assert DEV_KEY not in message
    assert _leftovers(tmp_path) == []


@pytest.mark.usefixtures("no_azure_env")
def test_nothing_listening_is_transient_and_bounded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests.fixtures.azure_server import dev_connection_string

    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", dev_connection_string(free_port()))
    url = "azure://container/blob"

    started = time.monotonic()
    with pytest.raises(TransientStorageError) as info:
        download_file(url, str(tmp_path / "blob"), retry=1, timeout=2)

    assert time.monotonic() - started < 6.0
    message = str(info.value)
    assert url in message and "2 attempts" in message
    assert DEV_KEY not in message
    assert _leftovers(tmp_path) == []


@pytest.mark.usefixtures("no_azure_env")
def test_silent_server_hits_the_read_timeout(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A server that accepts but never answers: the timeout reaches the SDK's socket reads."""
    from tests.fixtures.azure_server import dev_connection_string

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind((LOOPBACK, 0))
        silent.listen(16)  # the kernel completes handshakes; nobody ever reads or replies
        monkeypatch.setenv(
            "AZURE_STORAGE_CONNECTION_STRING", dev_connection_string(silent.getsockname()[1])
        )
        url = "az://container/blob"

        started = time.monotonic()
        with pytest.raises(TransientStorageError) as info:
            download_file(url, str(tmp_path / "blob"), retry=0, timeout=1)
        elapsed = time.monotonic() - started

    assert 0.9 < elapsed < 5.0
    assert url in str(info.value)
