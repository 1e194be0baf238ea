"""The Pile: convert its ``*.jsonl.zst`` files to MDS with one sub-dataset per Pile subset,
stream them mixed in any proportions as causal-LM samples, train a small GPT
(``python train.py yamls/pile.yaml``)."""

from recipes.pile.dataset import StreamingPile

__all__ = ["StreamingPile"]
