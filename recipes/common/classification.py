"""The loss of the image-classification recipes (CIFAR10, ImageNet)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional


def classification_loss(
    model: nn.Module, batch: Any
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Cross-entropy of ``model(images)`` against the labels of an (images, labels) batch,
    with top-1 accuracy as the metric."""
    images, labels = batch
    logits = model(images)
    accuracy = (logits.argmax(dim=1) == labels).float().mean()
    return functional.cross_entropy(logits, labels), {"accuracy": accuracy}
