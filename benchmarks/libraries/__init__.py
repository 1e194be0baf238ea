"""One adapter per library, all with the same small interface (``base.Library``), so a case
is written once and measures every library the same way."""

from __future__ import annotations

import importlib

from benchmarks.libraries.base import Library, Transform, Unsupported

_MODULES = {
    "streaming-lightning": "ours",
    "mosaicml-streaming": "mosaicml",
    "litdata": "litdata_peer",
    "webdataset": "webdataset_peer",
    "raw-read": "raw",
    "imagefolder": "imagefolder",
    "in-memory": "in_memory",
}

READERS = ["streaming-lightning", "mosaicml-streaming", "litdata", "webdataset"]


def get(name: str) -> Library:
    module = importlib.import_module(f"benchmarks.libraries.{_MODULES[name]}")
    library: Library = module.LIBRARY
    return library


__all__ = ["READERS", "Library", "Transform", "Unsupported", "get"]
