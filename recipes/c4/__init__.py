"""C4 (allenai/c4 ``en/``): convert the json.gz files to MDS as text or packed token
sequences, stream them as causal-LM samples, train a small GPT (``python train.py
yamls/c4.yaml``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from recipes.common.lazy import lazy_attributes

if TYPE_CHECKING:
    from recipes.c4.dataset import StreamingC4

# The dataset class imports torch; the converter does not need it (recipes.common.lazy).
__getattr__ = lazy_attributes(__name__, {"StreamingC4": "recipes.c4.dataset"})

__all__ = ["StreamingC4"]
