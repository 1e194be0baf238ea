"""Shared pytest configuration.

Tests under tests/compat/ need mosaicml-streaming 0.13.0 (and later Composer), which only
install beside torch 2.7 + torchvision; they run inside .venv-compat (``make test-compat``).
They are marked ``compat`` automatically. When SL_REQUIRE_COMPAT=1 (set by ``make test``), a
missing peer library is a failure, never a silent skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Server fixtures (real servers on 127.0.0.1), available to every test module.
pytest_plugins = [
    "tests.fixtures.s3_server",
    "tests.fixtures.gcs_server",
    "tests.fixtures.azure_server",
    "tests.fixtures.oci_server",
    "tests.fixtures.engines",
]

_COMPAT_DIR = Path(__file__).parent / "compat"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _COMPAT_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.compat)


def require_peer(module: str):  # type: ignore[no-untyped-def]
    """Import a peer library for a compat test: skip outside .venv-compat, fail inside it."""
    if os.environ.get("SL_REQUIRE_COMPAT") == "1":
        return __import__(module)
    return pytest.importorskip(module)
