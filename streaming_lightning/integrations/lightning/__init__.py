"""Lightning integration: a DataModule, a stateful DataLoader and a resume callback that make a
StreamingDataset resume mid-epoch at exactly the next unseen batch, on any number of ranks that
keeps the global batch size.

- :class:`StreamingDataModule` builds datasets from configs and returns
  :class:`StreamingDataLoader` loaders; nothing else is needed for exact resume.
- :class:`StreamingDataLoader` can be returned from a LightningModule's ``train_dataloader``.
- :class:`StreamingResumeCallback` adds resume to a plain ``DataLoader`` over a StreamingDataset
  (and keeps a StreamingDataLoader's position when the train loader is built before the restore).

Importing this package imports Lightning; ``import streaming_lightning`` never does.
"""

from __future__ import annotations

from streaming_lightning.errors import MissingExtraError

try:
    import lightning.pytorch  # noqa: F401
except ImportError as error:
    raise MissingExtraError(
        "streaming_lightning.integrations.lightning needs Lightning (lightning>=2.4), which is "
        f"not importable here ({error}). Install it with: "
        "pip install 'streaming-lightning[lightning]'"
    ) from error

from streaming_lightning.integrations.lightning.callback import StreamingResumeCallback
from streaming_lightning.integrations.lightning.dataloader import StreamingDataLoader
from streaming_lightning.integrations.lightning.datamodule import StreamingDataModule

__all__ = ["StreamingDataLoader", "StreamingDataModule", "StreamingResumeCallback"]
