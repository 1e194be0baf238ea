"""streaming-lightning: stream training data from object storage into PyTorch, exactly
reproducibly, with Lightning and Composer integrations.

Importing this package is cheap: it never imports Lightning, Composer, torchvision or any cloud
SDK, and not even torch until ``StreamingDataset`` or ``Stream`` is first used — so writers,
converters and their worker processes start in a fraction of a second. Those load only when
the feature that needs them is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from streaming_lightning import storage  # registers the uploader used by remote writer outputs
from streaming_lightning.errors import StreamingError
from streaming_lightning.format import (
    CSVWriter,
    JSONWriter,
    LocalDataset,
    MDSWriter,
    TSVWriter,
    XSVWriter,
)
from streaming_lightning.storage.merge import merge_index

if TYPE_CHECKING:
    from streaming_lightning.dataset import Stream, StreamingDataset

__version__ = "0.1.0"

#: Names whose modules import torch: loaded on first access (PEP 562).
_LAZY = {"Stream": "streaming_lightning.dataset", "StreamingDataset": "streaming_lightning.dataset"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'streaming_lightning' has no attribute {name!r}")


__all__ = [
    "CSVWriter",
    "JSONWriter",
    "LocalDataset",
    "MDSWriter",
    "Stream",
    "StreamingDataset",
    "StreamingError",
    "TSVWriter",
    "XSVWriter",
    "__version__",
    "merge_index",
    "storage",
]
