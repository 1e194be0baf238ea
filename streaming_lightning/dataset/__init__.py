"""Reading datasets for training: world detection, epoch plans (partition + shuffle), the node
cache, streams and StreamingDataset."""

from streaming_lightning.dataset.batches import BatchesLoader, BatchesView
from streaming_lightning.dataset.stream import Stream
from streaming_lightning.dataset.streaming_dataset import StreamingDataset
from streaming_lightning.dataset.world import World, detect_world

__all__ = ["BatchesLoader", "BatchesView", "Stream", "StreamingDataset", "World", "detect_world"]
