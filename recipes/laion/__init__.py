"""LAION (img2dataset crawls): convert the tar or folder shards and their parquet listings to
MDS, stream them as (image tensor, byte tokens) pairs, train a tiny CLIP-style contrastive
model (``python train.py yamls/laion.yaml``)."""

from recipes.laion.dataset import StreamingLAION

__all__ = ["StreamingLAION"]
