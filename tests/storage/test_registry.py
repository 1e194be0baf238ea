"""Choosing a backend from a URL: every scheme, and install advice when its SDK is missing."""

from __future__ import annotations

import pytest

from streaming_lightning.errors import ConfigError, MissingExtraError
from streaming_lightning.storage import registry


@pytest.mark.parametrize(
    ("url", "extra"),
    [
        ("s3://b/k", "s3"),
        ("gs://b/k", "gcs"),
        ("oci://b/k", "oci"),
        ("azure://c/k", "azure"),
        ("az://c/k", "azure"),
    ],
)
def test_missing_sdk_gives_install_advice(
    url: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    scheme = url.split("://")[0]
    module, cls, _, _ = registry._BACKENDS[scheme]
    monkeypatch.setitem(
        registry._BACKENDS, scheme, (module, cls, extra, "sdk_that_is_not_installed")
    )
    registry.reset_backends()
    try:
        with pytest.raises(
            MissingExtraError, match=rf"pip install 'streaming-lightning\[{extra}\]'"
        ):
            registry.get_backend(url)
    finally:
        registry.reset_backends()


@pytest.mark.parametrize(
    ("url", "scheme"), [("/data/x", "file"), ("file:///data/x", "file"), ("S3://b/k", "s3")]
)
def test_scheme_of(url: str, scheme: str) -> None:
    assert registry.scheme_of(url) == scheme


def test_unknown_scheme_lists_the_supported_ones() -> None:
    with pytest.raises(ConfigError, match=r"scheme 'ftp'.*s3://"):
        registry.get_backend("ftp://host/x")
