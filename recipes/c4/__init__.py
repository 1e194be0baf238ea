"""C4 (allenai/c4 ``en/``): convert the json.gz files to MDS as text or packed token
sequences, stream them as causal-LM samples, train a small GPT (``python train.py
yamls/c4.yaml``)."""

from recipes.c4.dataset import StreamingC4

__all__ = ["StreamingC4"]
