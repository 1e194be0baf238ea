"""streaming-lightning: stream training data from object storage into PyTorch, exactly
reproducibly, with Lightning and Composer integrations.

Importing this package is cheap: it never imports Lightning, Composer, torchvision or any cloud
SDK. Those load only when the feature that needs them is used.
"""

from streaming_lightning import storage  # registers the uploader used by remote writer outputs
from streaming_lightning.dataset import Stream, StreamingDataset
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

__version__ = "0.1.0"

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
