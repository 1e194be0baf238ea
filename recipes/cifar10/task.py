"""CIFAR10 for ``train.py``: StreamingCIFAR10 batches into a small ResNet, cross-entropy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from recipes.cifar10.dataset import StreamingCIFAR10
from recipes.cifar10.model import ResNet
from recipes.common.classification import classification_loss
from recipes.common.task import Task


@dataclass
class ModelConfig:
    #: Channels of the first stage (then 2x and 4x).
    width: int = 16
    #: Residual blocks per stage.
    blocks: int = 1


def build_model(config: Any) -> nn.Module:
    return ResNet(num_classes=10, width=int(config.width), blocks=int(config.blocks))


TASK = Task(
    name="cifar10",
    dataset_class=StreamingCIFAR10,
    model_config=ModelConfig,
    build_model=build_model,
    loss=classification_loss,
    metric_names=("accuracy",),
)
