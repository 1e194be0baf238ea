"""LAION (img2dataset crawls): convert the tar or folder shards and their parquet listings to
MDS, stream them as (image tensor, byte tokens) pairs, train a tiny CLIP-style contrastive
model (``python train.py yamls/laion.yaml``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from recipes.common.lazy import lazy_attributes

if TYPE_CHECKING:
    from recipes.laion.dataset import StreamingLAION

# The dataset class imports torch; the converter does not need it (recipes.common.lazy).
__getattr__ = lazy_attributes(__name__, {"StreamingLAION": "recipes.laion.dataset"})

__all__ = ["StreamingLAION"]
