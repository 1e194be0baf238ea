"""WebVid for ``train.py``: StreamingWebVid batches into a tiny video-text model, trained with
the symmetric InfoNCE loss of CLIP (each clip must pick its caption out of the batch, and each
caption its clip).

The negatives are the device batch's other samples; under DDP each rank contrasts within its
own batch (no all-gather), which keeps the recipe simple at the cost of fewer negatives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from recipes.common.contrastive import symmetric_infonce
from recipes.common.task import Task
from recipes.webvid.dataset import StreamingWebVid
from recipes.webvid.model import VideoTextModel


@dataclass
class ModelConfig:
    #: Size of the shared video-text embedding.
    embed_dim: int = 64
    #: Channels of the frame encoder's first stage (then 2x and 4x).
    width: int = 16
    #: Channels of the byte embeddings.
    text_width: int = 64
    #: Initial softmax temperature (learned; CLIP starts at 0.07).
    temperature: float = 0.07


def build_model(config: Any) -> nn.Module:
    return VideoTextModel(
        embed_dim=int(config.embed_dim),
        width=int(config.width),
        text_width=int(config.text_width),
        temperature=float(config.temperature),
    )


def loss(model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    return symmetric_infonce(model(batch["frames"], batch["tokens"]))  # clip i vs caption j


TASK = Task(
    name="webvid",
    dataset_class=StreamingWebVid,
    model_config=ModelConfig,
    build_model=build_model,
    loss=loss,
    metric_names=("accuracy",),
)
