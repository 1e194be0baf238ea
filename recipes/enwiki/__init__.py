"""English Wikipedia (the text dump mosaicml-streaming's enwiki converter reads): convert it to
MDS as articles or packed token sequences, stream it as causal-LM samples, train a small GPT
(``python train.py yamls/enwiki.yaml``)."""

from recipes.enwiki.dataset import StreamingEnWiki

__all__ = ["StreamingEnWiki"]
