"""C4 for ``train.py``: StreamingC4 sequences into a small GPT, next-token cross-entropy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from recipes.c4.dataset import StreamingC4
from recipes.c4.model import GPT
from recipes.common.task import Task


@dataclass
class ModelConfig:
    #: Token ids the model knows: 257 for the byte tokenizer; for bpe or a tokenizer.json, the
    #: vocab_size the converter prints.
    vocab_size: int = 257
    #: Width of the embeddings and of every block.
    d_model: int = 64
    #: Transformer blocks.
    n_layers: int = 2
    #: Attention heads per block (d_model must be a multiple).
    n_heads: int = 2
    #: Longest input (position embeddings); equals the dataset's sequence length.
    seq_len: int = 128
    #: Dropout on embeddings, attention and MLP outputs (0: none, usual for pretraining).
    dropout: float = 0.0


def build_model(config: Any) -> nn.Module:
    return GPT(
        vocab_size=int(config.vocab_size),
        d_model=int(config.d_model),
        n_layers=int(config.n_layers),
        n_heads=int(config.n_heads),
        seq_len=int(config.seq_len),
        dropout=float(config.dropout),
    )


def loss(model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Mean cross-entropy of predicting token t+1 from tokens 0..t, over the positions whose
    target is real text (``loss_mask``, present for padded text-mode samples)."""
    input_ids = batch["input_ids"]
    logits = model(input_ids[:, :-1])
    targets = input_ids[:, 1:]
    mask = batch.get("loss_mask")
    if mask is not None:
        targets = targets.masked_fill(~mask[:, 1:], -100)  # cross_entropy's ignore_index
    value = functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    return value, {"perplexity": torch.exp(value.detach())}


TASK = Task(
    name="c4",
    dataset_class=StreamingC4,
    model_config=ModelConfig,
    build_model=build_model,
    loss=loss,
    token_column="input_ids",
)
