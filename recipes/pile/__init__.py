"""The Pile: convert its ``*.jsonl.zst`` files to MDS with one sub-dataset per Pile subset,
stream them mixed in any proportions as causal-LM samples, train a small GPT
(``python train.py yamls/pile.yaml``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from recipes.common.lazy import lazy_attributes

if TYPE_CHECKING:
    from recipes.pile.dataset import StreamingPile

# The dataset class imports torch; the converter does not need it (recipes.common.lazy).
__getattr__ = lazy_attributes(__name__, {"StreamingPile": "recipes.pile.dataset"})

__all__ = ["StreamingPile"]
