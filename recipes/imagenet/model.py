"""A ResNet for ImageNet-sized inputs (He et al. 2016): a stride-2 7×7 stem and a 3×3 max-pool
(÷4), then four stages of basic blocks with widths w, 2w, 4w, 8w, each after the first
halving the resolution (÷32 in all), global average pooling and a linear classifier.

``width=64, blocks=(2, 2, 2, 2)`` is ResNet-18 and ``(3, 4, 6, 3)`` ResNet-34 (11.7M and 21.8M
parameters at 1000 classes). The defaults (``width=16``, one block per stage: 0.31M
parameters plus 129 per class) run a few steps on a CPU with tiny images; inputs of 32 pixels
or more work.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from recipes.common.resnet import residual_stages


class ResNet(nn.Module):
    def __init__(
        self, num_classes: int = 1000, width: int = 16, blocks: Sequence[int] = (1, 1, 1, 1)
    ) -> None:
        super().__init__()
        if len(blocks) != 4 or min(blocks) < 1:
            raise ValueError(f"blocks must be four counts >= 1 (one per stage), got {blocks}.")
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 7, 2, 3, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.MaxPool2d(3, 2, 1),
        )
        self.stages, channels = residual_stages(width, blocks)
        self.head = nn.Linear(channels, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):  # torchvision's initialisation for ResNets
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.stages(self.stem(x))
        return self.head(features.mean(dim=(2, 3)))
