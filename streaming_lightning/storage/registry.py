"""Scheme -> backend class, imported lazily so that importing the library never imports a cloud
SDK, and a missing SDK turns into install advice instead of an ImportError trace."""

from __future__ import annotations

import importlib
import os
import threading

from streaming_lightning.errors import ConfigError
from streaming_lightning.extras import require_extra
from streaming_lightning.storage.base import Backend

# scheme -> (module, class name, pip extra, SDK import name)
_BACKENDS: dict[str, tuple[str, str, str, str]] = {
    "file": ("streaming_lightning.storage.local", "LocalBackend", "", ""),
    "s3": ("streaming_lightning.storage.s3", "S3Backend", "s3", "boto3"),
    "gs": ("streaming_lightning.storage.gcs", "GCSBackend", "gcs", "google.cloud.storage"),
    "oci": ("streaming_lightning.storage.oci", "OCIBackend", "oci", "oci"),
    "azure": ("streaming_lightning.storage.azure", "AzureBackend", "azure", "azure.storage.blob"),
    "az": ("streaming_lightning.storage.azure", "AzureBackend", "azure", "azure.storage.blob"),
}

_instances: dict[tuple[int, str], Backend] = {}
_lock = threading.Lock()


def supported_schemes() -> list[str]:
    return sorted(_BACKENDS)


def scheme_of(url: str) -> str:
    """``'s3'`` for ``s3://b/k``; ``'file'`` for local paths and ``file://`` URLs."""
    if "://" not in url:
        return "file"
    return url.split("://", 1)[0].lower()


def is_remote(url: str | None) -> bool:
    return bool(url) and scheme_of(str(url)) != "file"


def get_backend(url: str) -> Backend:
    """The backend for ``url``'s scheme, one instance per process (re-created after fork)."""
    scheme = scheme_of(url)
    entry = _BACKENDS.get(scheme)
    if entry is None:
        raise ConfigError(
            f"Unsupported storage URL {url!r}: scheme {scheme!r} is not one of "
            f"{', '.join(s + '://' for s in supported_schemes())} (or a local path)."
        )
    module_name, class_name, extra, sdk = entry
    key = (os.getpid(), module_name)
    with _lock:
        backend = _instances.get(key)
        if backend is None:
            if sdk:
                require_extra(sdk, extra, f"Reading or writing {scheme}:// URLs")
            cls = getattr(importlib.import_module(module_name), class_name)
            backend = cls()
            _instances[key] = backend
    return backend


def reset_backends() -> None:
    """Forget cached backends (tests change endpoints and credentials between cases)."""
    with _lock:
        _instances.clear()
