"""OCI backend through the real ``oci`` SDK against an Object Storage REST server on
127.0.0.1 (see tests/fixtures/oci_server.py), via the public transfer functions so retries,
atomic writes and locks are exercised as users see them."""

from __future__ import annotations

import logging
import os
import time
import traceback
from pathlib import Path

import numpy as np
import pytest

from streaming_lightning.errors import (
    ConfigError,
    RemoteNotFoundError,
    RemotePermissionError,
    StorageError,
    TransientStorageError,
)
from streaming_lightning.storage import (
    download_file,
    list_objects,
    object_exists,
    registry,
    upload_file,
)
from streaming_lightning.storage.oci import OCIBackend
from tests.fixtures.oci_server import (
    BUCKET,
    NAMESPACE,
    PAGE_SIZE,
    OCIHandle,
    oci_server_fixture,  # noqa: F401  (requested as oci_server)
    write_credentials,
)
from tests.fixtures.servers import LOOPBACK, free_port


def _file(path: Path, size: int, seed: int = 0) -> bytes:
    data = np.random.default_rng(seed).bytes(size)
    path.write_bytes(data)
    return data


def _leftovers(directory: Path) -> list[str]:
    """What a failed download left behind: only the lock folder is allowed."""
    return sorted(os.listdir(directory))


def _assert_no_secrets(err: BaseException, oci_server: OCIHandle) -> None:
    """Neither the message nor the printed traceback shows key material or the fingerprint."""
    shown = "".join(traceback.format_exception(err))
    key_lines = [line for line in oci_server.credentials.key_pem.splitlines() if line]
    assert "PRIVATE KEY" not in shown
    assert not any(line in shown for line in key_lines)
    assert oci_server.credentials.fingerprint not in shown


# Round trips ----------------------------------------------------------------------------------


def test_registry_serves_oci_urls(oci_server: OCIHandle) -> None:
    assert isinstance(registry.get_backend(oci_server.url("x")), OCIBackend)


def test_upload_download_round_trip(oci_server: OCIHandle, tmp_path: Path) -> None:
    big = _file(tmp_path / "big", 3 << 20)
    _file(tmp_path / "empty", 0)
    # Object names are percent-encoded on the wire and may hold '/', spaces and '+'.
    big_url = oci_server.url("data/shard 0+1.mds")
    empty_url = oci_server.url("data/sub/empty.bin")
    upload_file(str(tmp_path / "big"), big_url)
    upload_file(str(tmp_path / "empty"), empty_url)
    assert oci_server.server.objects[(BUCKET, "data/shard 0+1.mds")] == big
    assert oci_server.server.objects[(BUCKET, "data/sub/empty.bin")] == b""

    out = tmp_path / "out"
    assert download_file(big_url, str(out / "big")) == str(out / "big")
    download_file(empty_url, str(out / "empty"))
    assert (out / "big").read_bytes() == big
    assert (out / "empty").read_bytes() == b""
    assert _leftovers(out) == [".locks", "big", "empty"]
    backend = registry.get_backend(big_url)
    assert backend.size(big_url) == len(big)
    assert backend.size(empty_url) == 0


def test_upload_overwrites(oci_server: OCIHandle, tmp_path: Path) -> None:
    url = oci_server.url("index.json")
    (tmp_path / "v1").write_bytes(b"first")
    (tmp_path / "v2").write_bytes(b"second version")
    upload_file(str(tmp_path / "v1"), url)
    upload_file(str(tmp_path / "v2"), url)
    download_file(url, str(tmp_path / "out"))
    assert (tmp_path / "out").read_bytes() == b"second version"


def test_list_objects_follows_pages(oci_server: OCIHandle) -> None:
    names = [f"data/{i:02d}.mds" for i in range(3 * PAGE_SIZE + 1)] + ["data/sub/x", "datax"]
    for name in reversed(names):
        oci_server.server.put(name, b"x")
    oci_server.server.put("other/data/y", b"y")
    assert list_objects(oci_server.url("data/")) == [
        oci_server.url(name) for name in sorted(names) if name.startswith("data/")
    ]
    # 11 objects under data/ at 3 a page: the backend followed nextStartWith to the end.
    assert oci_server.server.count("GET", "list") == 4
    # A prefix is a string prefix, not a folder (as on S3 and GCS).
    assert list_objects(oci_server.url("data")) == [oci_server.url(n) for n in sorted(names)]
    assert list_objects(f"oci://{BUCKET}") == [
        oci_server.url(n) for n in sorted([*names, "other/data/y"])
    ]
    assert list_objects(oci_server.url("nothing/here")) == []


def test_object_exists(oci_server: OCIHandle) -> None:
    oci_server.server.put("data/a.mds", b"abc")
    assert object_exists(oci_server.url("data/a.mds"))
    assert not object_exists(oci_server.url("data/a"))
    assert not object_exists(oci_server.url("data/b.mds"))
    assert oci_server.server.count("HEAD", "object") == 3


def test_namespace_is_fetched_once_or_taken_from_env(
    oci_server: OCIHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    oci_server.server.put("a", b"1")
    for _ in range(3):
        assert object_exists(oci_server.url("a"))
    download_file(oci_server.url("a"), str(tmp_path / "a"))  # another timeout: another client
    assert oci_server.server.count("GET", "namespace") == 1

    monkeypatch.setenv("OCI_NAMESPACE", NAMESPACE)
    registry.reset_backends()
    assert object_exists(oci_server.url("a"))
    assert oci_server.server.count("GET", "namespace") == 1, "OCI_NAMESPACE skips the lookup"

    monkeypatch.setenv("OCI_NAMESPACE", "someone-else")
    registry.reset_backends()
    with pytest.raises(RemoteNotFoundError, match="NamespaceNotFound"):
        download_file(oci_server.url("a"), str(tmp_path / "b"))


def test_a_bucket_is_not_an_object(oci_server: OCIHandle, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="names a bucket"):
        download_file(f"oci://{BUCKET}/", str(tmp_path / "x"))


# Errors the service returns ----------------------------------------------------------------------


def test_missing_object_fails_fast_and_names_the_url(oci_server: OCIHandle, tmp_path: Path) -> None:
    url = oci_server.url("missing.mds")
    start = time.monotonic()
    with pytest.raises(RemoteNotFoundError, match=url) as info:
        download_file(url, str(tmp_path / "x"), retry=3)
    assert time.monotonic() - start < 2, "a 404 must not be retried"
    assert "ObjectNotFound" in str(info.value)
    assert oci_server.server.count("GET", "object") == 1
    with pytest.raises(RemoteNotFoundError, match="oci://no-such-bucket/x"):
        download_file("oci://no-such-bucket/x", str(tmp_path / "y"), retry=3)
    with pytest.raises(RemoteNotFoundError, match="oci://no-such-bucket/"):
        list_objects("oci://no-such-bucket/")
    assert _leftovers(tmp_path) == [".locks"], "no temp or partial files are left"


def test_forbidden_is_not_retried(oci_server: OCIHandle, tmp_path: Path) -> None:
    oci_server.server.put("a", b"1")
    (tmp_path / "src").write_bytes(b"data")
    oci_server.server.fail(403)
    url = oci_server.url("a")
    with pytest.raises(RemotePermissionError, match=url) as info:
        download_file(url, str(tmp_path / "out" / "a"), retry=3)
    assert "403 NotAuthorizedOrNotFound" in str(info.value)
    with pytest.raises(RemotePermissionError, match=oci_server.url("b")):
        upload_file(str(tmp_path / "src"), oci_server.url("b"), retry=3)
    assert oci_server.server.count("GET", "object") == 1
    assert oci_server.server.count("PUT", "object") == 1
    assert _leftovers(tmp_path / "out") == [".locks"]


def test_wrong_api_key_is_access_denied(
    oci_server: OCIHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server checks the request was signed with the configured key id: another key's
    config gets 401, which must fail at once and point at the profile."""
    other = write_credentials(tmp_path / "other")
    monkeypatch.setenv("OCI_CONFIG_FILE", str(other.config_file))
    registry.reset_backends()
    with pytest.raises(RemotePermissionError, match="401 NotAuthenticated") as info:
        object_exists(oci_server.url("a"), retry=3)
    assert "[DEFAULT]" in str(info.value)
    assert str(other.config_file) in str(info.value)
    assert oci_server.server.count("GET", "namespace") == 1


@pytest.mark.parametrize("operation", ["download", "upload", "list", "exists"])
def test_503s_are_retried_until_success(
    oci_server: OCIHandle, tmp_path: Path, operation: str, caplog: pytest.LogCaptureFixture
) -> None:
    payload = _file(tmp_path / "src", 100_000)
    oci_server.server.put("obj", payload)
    url = oci_server.url("obj")
    object_exists(url)  # look the namespace up first, so only the operation is counted
    before = len(oci_server.server.requests)
    oci_server.server.fail(503, times=2)
    caplog.set_level(logging.WARNING, logger="streaming_lightning.storage.transfer")
    if operation == "download":
        download_file(url, str(tmp_path / "out"), retry=3)
        assert (tmp_path / "out").read_bytes() == payload
    elif operation == "upload":
        upload_file(str(tmp_path / "src"), oci_server.url("copy"), retry=3)
        assert oci_server.server.objects[(BUCKET, "copy")] == payload
    elif operation == "list":
        assert list_objects(oci_server.url(""), retry=3) == [url]
    else:
        assert object_exists(url, retry=3)
    # Two failures and one success, each sent by our retry loop: the SDK did not retry itself.
    assert len(oci_server.server.requests) - before == 3
    retries = [r for r in caplog.records if r.getMessage().startswith("Retrying")]
    assert len(retries) == 2 and all("503" in r.getMessage() for r in retries)


def test_503_forever_gives_up_naming_the_url(oci_server: OCIHandle, tmp_path: Path) -> None:
    oci_server.server.put("a", b"1")
    oci_server.server.fail(503)
    url = oci_server.url("a")
    with pytest.raises(TransientStorageError, match=url) as info:
        download_file(url, str(tmp_path / "x"), retry=1)
    assert "2 attempts" in str(info.value)
    assert "503" in str(info.value)
    assert oci_server.server.count("GET", "object") == 2
    assert _leftovers(tmp_path) == [".locks"]


def test_throttling_and_server_errors_are_transient(oci_server: OCIHandle) -> None:
    oci_server.server.put("a", b"1")
    for status in (429, 500, 504):
        oci_server.server.clear_faults()
        oci_server.server.fail(status)
        with pytest.raises(TransientStorageError, match=str(status)):
            object_exists(oci_server.url("a"), retry=0)


def test_other_client_errors_are_not_retried(oci_server: OCIHandle, tmp_path: Path) -> None:
    oci_server.server.put("a", b"1")
    oci_server.server.fail(400, code="InvalidParameter")
    with pytest.raises(StorageError, match="400 InvalidParameter") as info:
        download_file(oci_server.url("a"), str(tmp_path / "x"), retry=3)
    assert not isinstance(info.value, TransientStorageError)
    assert oci_server.server.count("GET", "object") == 1


def test_namespace_lookup_failure_is_retried(oci_server: OCIHandle) -> None:
    oci_server.server.put("a", b"1")
    oci_server.server.fail(503, times=1, namespace=True)
    assert object_exists(oci_server.url("a"), retry=1)
    assert oci_server.server.count("GET", "namespace") == 2


# Network failures -------------------------------------------------------------------------------


def test_truncated_body_is_retried(oci_server: OCIHandle, tmp_path: Path) -> None:
    payload = _file(tmp_path / "src", 1 << 20)
    oci_server.server.put("a", payload)
    oci_server.server.truncate(times=1)
    download_file(oci_server.url("a"), str(tmp_path / "out" / "a"), retry=2)
    assert (tmp_path / "out" / "a").read_bytes() == payload
    assert oci_server.server.count("GET", "object") == 2

    oci_server.server.truncate(times=None)
    with pytest.raises(TransientStorageError, match=oci_server.url("a")):
        download_file(oci_server.url("a"), str(tmp_path / "out" / "b"), retry=0)
    assert _leftovers(tmp_path / "out") == [".locks", "a"]


def test_stalled_response_times_out(oci_server: OCIHandle, tmp_path: Path) -> None:
    oci_server.server.put("a", b"1")
    object_exists(oci_server.url("a"))  # the namespace lookup is not what times out here
    oci_server.server.stall()
    start = time.monotonic()
    with pytest.raises(TransientStorageError, match=oci_server.url("a")):
        download_file(oci_server.url("a"), str(tmp_path / "x"), retry=0, timeout=0.5)
    assert time.monotonic() - start < 5
    assert _leftovers(tmp_path) == [".locks"]


def test_connection_refused_is_transient(
    oci_server: OCIHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCI_ENDPOINT_URL", f"http://{LOOPBACK}:{free_port()}")
    monkeypatch.setenv("OCI_NAMESPACE", NAMESPACE)
    registry.reset_backends()
    with pytest.raises(TransientStorageError, match=oci_server.url("a")) as info:
        download_file(oci_server.url("a"), str(tmp_path / "x"), retry=1, timeout=2)
    assert "2 attempts" in str(info.value)
    _assert_no_secrets(info.value, oci_server)


def test_malformed_endpoint_is_a_config_error(
    oci_server: OCIHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    for endpoint in ("ftp://127.0.0.1:1", "127.0.0.1:8080", "https://host/some/path"):
        monkeypatch.setenv("OCI_ENDPOINT_URL", endpoint)
        registry.reset_backends()
        with pytest.raises(ConfigError, match="OCI_ENDPOINT_URL"):
            object_exists(oci_server.url("a"))
    assert oci_server.server.requests == []


# Configuration ----------------------------------------------------------------------------------


def test_missing_config_file_says_what_to_do(
    oci_server: OCIHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no" / "config"
    monkeypatch.setenv("OCI_CONFIG_FILE", str(missing))
    registry.reset_backends()
    start = time.monotonic()
    with pytest.raises(RemotePermissionError) as info:
        download_file(oci_server.url("a"), str(tmp_path / "x"), retry=3)
    assert time.monotonic() - start < 2, "a config problem must not be retried"
    message = str(info.value)
    assert oci_server.url("a") in message
    assert str(missing) in message and "does not exist" in message
    assert "oci setup config" in message and "OCI_CONFIG_FILE" in message
    _assert_no_secrets(info.value, oci_server)
    assert oci_server.server.requests == [], "nothing is sent without a config"


def test_config_errors_never_show_key_material(
    oci_server: OCIHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = oci_server.credentials
    config_text = creds.config_file.read_text()
    broken = {
        # The user pointed OCI_CONFIG_FILE at the key itself: configparser quotes its lines.
        "key-as-config": creds.key_pem,
        "bad-fingerprint": config_text.replace(creds.fingerprint, creds.fingerprint[:-3]),
        "no-region": "\n".join(
            line for line in config_text.splitlines() if not line.startswith("region")
        ),
        "key-not-a-key": config_text.replace(str(creds.key_file), str(tmp_path / "junk.pem")),
        "key-file-missing": config_text.replace(str(creds.key_file), str(tmp_path / "gone.pem")),
    }
    (tmp_path / "junk.pem").write_text(creds.key_pem[:200])
    expected = {
        "key-as-config": "not an INI file",
        "bad-fingerprint": "fingerprint is malformed",
        "no-region": "region is missing",
        "key-not-a-key": "not a usable private key",
        "key-file-missing": "key_file does not exist",
    }
    for case, text in broken.items():
        path = tmp_path / f"{case}.config"
        path.write_text(text)
        monkeypatch.setenv("OCI_CONFIG_FILE", str(path))
        monkeypatch.delenv("OCI_REGION", raising=False)
        registry.reset_backends()
        with pytest.raises(RemotePermissionError, match=expected[case]) as info:
            object_exists(oci_server.url("a"), retry=3)
        assert oci_server.url("a") in str(info.value), case
        _assert_no_secrets(info.value, oci_server)
    assert oci_server.server.requests == []


def test_profile_comes_from_oci_cli_profile(
    oci_server: OCIHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = write_credentials(tmp_path / "creds", profile="TRAINING")
    monkeypatch.setenv("OCI_CONFIG_FILE", str(other.config_file))
    registry.reset_backends()
    # configparser always has a DEFAULT section, so a config without one lacks every field.
    with pytest.raises(RemotePermissionError, match=r"\[DEFAULT\].*user is missing"):
        object_exists(oci_server.url("a"))
    monkeypatch.setenv("OCI_CLI_PROFILE", "EVAL")
    registry.reset_backends()
    with pytest.raises(RemotePermissionError, match=r"\[EVAL\].*profile is not in it"):
        object_exists(oci_server.url("a"))
    monkeypatch.setenv("OCI_CLI_PROFILE", "TRAINING")
    oci_server.server.key_id = other.key_id
    registry.reset_backends()
    oci_server.server.put("a", b"1")
    assert object_exists(oci_server.url("a"))
