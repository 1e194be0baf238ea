"""English Wikipedia (the text dump mosaicml-streaming's enwiki converter reads): convert it to
MDS as articles or packed token sequences, stream it as causal-LM samples, train a small GPT
(``python train.py yamls/enwiki.yaml``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from recipes.common.lazy import lazy_attributes

if TYPE_CHECKING:
    from recipes.enwiki.dataset import StreamingEnWiki

# The dataset class imports torch; the converter does not need it (recipes.common.lazy).
__getattr__ = lazy_attributes(__name__, {"StreamingEnWiki": "recipes.enwiki.dataset"})

__all__ = ["StreamingEnWiki"]
