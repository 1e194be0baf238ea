"""A small ResNet for 32×32 images (He et al.'s CIFAR layout: three stages, widths w, 2w, 4w),
sized for CPU demos by default (``width=16, blocks=1``: ~80k parameters)."""

from __future__ import annotations

import torch
from torch import nn

from recipes.common.resnet import residual_stages


class ResNet(nn.Module):
    def __init__(self, num_classes: int = 10, width: int = 16, blocks: int = 1) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        self.stages, channels = residual_stages(width, [blocks] * 3)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.stages(self.stem(x))
        return self.head(features.mean(dim=(2, 3)))
