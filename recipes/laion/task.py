"""LAION for ``train.py``: StreamingLAION batches into a tiny CLIP, symmetric InfoNCE.

Each caption is the positive of its own image and every other caption of the device batch a
negative (and the same for images), so larger batches give harder, more useful contrast.
Negatives are not gathered across devices: with N GPUs each contrasts its own batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from recipes.common.contrastive import symmetric_infonce
from recipes.common.task import Task
from recipes.laion.dataset import VOCAB, StreamingLAION
from recipes.laion.model import CLIP
from streaming_lightning.errors import ConfigError


@dataclass
class ModelConfig:
    #: Size of the shared image/text embedding.
    embed_dim: int = 64
    #: Channels of the image encoder's first stage (then 2x and 4x).
    width: int = 16
    #: Width of the text encoder's byte embeddings and transformer.
    text_width: int = 64
    #: Transformer layers of the text encoder (0: mean of byte embeddings).
    text_layers: int = 1
    #: Attention heads (must divide text_width).
    heads: int = 4
    #: Token ids: 256 bytes + padding (the dataset's byte tokens).
    vocab: int = VOCAB
    #: Longest caption in tokens the model accepts (>= data.options.max_caption_len).
    context_length: int = 32


def build_model(config: Any) -> nn.Module:
    if int(config.text_width) % int(config.heads):
        raise ConfigError(
            f"model.heads ({config.heads}) must divide model.text_width ({config.text_width})."
        )
    if int(config.vocab) < VOCAB:
        raise ConfigError(f"model.vocab must be >= {VOCAB} (byte tokens), got {config.vocab}.")
    return CLIP(
        embed_dim=int(config.embed_dim),
        width=int(config.width),
        text_width=int(config.text_width),
        text_layers=int(config.text_layers),
        heads=int(config.heads),
        vocab=int(config.vocab),
        context_length=int(config.context_length),
    )


def loss(model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    return symmetric_infonce(model(batch["image"], batch["tokens"]))  # image i vs caption j


TASK = Task(
    name="laion",
    dataset_class=StreamingLAION,
    model_config=ModelConfig,
    build_model=build_model,
    loss=loss,
    metric_names=("accuracy",),
)
