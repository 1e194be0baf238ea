"""Lightning integration: a DataModule, a stateful DataLoader and a resume callback that make a
StreamingDataset resume mid-epoch at exactly the next unseen batch, on any number of ranks that
keeps the global batch size.

- :class:`StreamingDataModule` builds datasets from configs and returns
  :class:`StreamingDataLoader` loaders; nothing else is needed for exact resume.
- :class:`StreamingDataLoader` can be returned from a LightningModule's ``train_dataloader``.
- :class:`StreamingResumeCallback` adds resume to a plain ``DataLoader`` over a StreamingDataset
  (and keeps a StreamingDataLoader's position when the train loader is built before the restore).
- :class:`AtomicCheckpointIO` (``Trainer(plugins=[...])``) writes checkpoints that a kill can
  neither truncate nor leave temp files of, so the restart always finds one to load.

Importing this package imports Lightning; ``import streaming_lightning`` never does.
"""

from __future__ import annotations

from streaming_lightning.extras import require_extra

require_extra(
    "lightning.pytorch", "lightning", "streaming_lightning.integrations.lightning (Lightning>=2.4)"
)

from streaming_lightning.integrations.lightning.callback import StreamingResumeCallback  # noqa: E402
from streaming_lightning.integrations.lightning.checkpoint_io import AtomicCheckpointIO  # noqa: E402
from streaming_lightning.integrations.lightning.dataloader import StreamingDataLoader  # noqa: E402
from streaming_lightning.integrations.lightning.datamodule import StreamingDataModule  # noqa: E402

__all__ = [
    "AtomicCheckpointIO",
    "StreamingDataLoader",
    "StreamingDataModule",
    "StreamingResumeCallback",
]
