"""ImageNet for ``train.py``: StreamingImageNet batches into a ResNet, cross-entropy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from recipes.common.classification import classification_loss
from recipes.common.task import Task
from recipes.imagenet.dataset import StreamingImageNet
from recipes.imagenet.model import ResNet
from streaming_lightning.errors import ConfigError


@dataclass
class ModelConfig:
    #: Outputs of the classifier: 1000 for ImageNet-1k (labels are indexes into classes.json).
    num_classes: int = 1000
    #: Channels of the stem and first stage (then 2x, 4x, 8x); 64 is the published ResNets'.
    width: int = 16
    #: Residual blocks in each of the four stages: [2, 2, 2, 2] is ResNet-18, [3, 4, 6, 3]
    #: ResNet-34. The defaults are a CPU-sized model for tests and demos.
    blocks: list[int] = field(default_factory=lambda: [1, 1, 1, 1])


def build_model(config: Any) -> nn.Module:
    blocks = [int(count) for count in config.blocks]
    if len(blocks) != 4 or min(blocks) < 1:
        raise ConfigError(f"model.blocks must be four counts >= 1 (one per stage), got {blocks}.")
    if int(config.num_classes) < 1 or int(config.width) < 1:
        raise ConfigError("model.num_classes and model.width must be >= 1.")
    return ResNet(num_classes=int(config.num_classes), width=int(config.width), blocks=blocks)


TASK = Task(
    name="imagenet",
    dataset_class=StreamingImageNet,
    model_config=ModelConfig,
    build_model=build_model,
    loss=classification_loss,
    metric_names=("accuracy",),
)
