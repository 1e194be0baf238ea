"""WebVid: convert the metadata CSV and a crawl of its mp4 files to MDS, stream clips as
decoded frames with byte-level caption tokens, train a tiny video-text contrastive model
(``python train.py yamls/webvid.yaml``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from recipes.common.lazy import lazy_attributes

if TYPE_CHECKING:
    from recipes.webvid.dataset import StreamingWebVid

# The dataset class imports torch; the converter does not need it (recipes.common.lazy).
__getattr__ = lazy_attributes(__name__, {"StreamingWebVid": "recipes.webvid.dataset"})

__all__ = ["StreamingWebVid"]
