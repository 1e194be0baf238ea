"""A small fully-convolutional segmentation network (an FCN, Long et al. 2015, on a ResNet
trunk): a stride-2 3×3 stem, then stages of basic blocks with widths w, 2w, 4w, … (each after
the first halving the resolution), a 3×3 conv head giving per-class scores, and bilinear
upsampling of the scores back to the input's size.

With three stages the scores are computed at 1/8 of the input, DeepLab's output stride. The
defaults (``width=16``, one block per stage: 0.12M parameters at 150 classes) run a few steps
on a CPU with 32-pixel crops; ``width=64, blocks=(2, 2, 2)`` (3.4M) is the recipe's YAML's.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional

from recipes.common.resnet import residual_stages


class SegmentationFCN(nn.Module):
    def __init__(
        self, num_classes: int = 150, width: int = 16, blocks: Sequence[int] = (1, 1, 1)
    ) -> None:
        super().__init__()
        if not blocks or min(blocks) < 1:
            raise ValueError(
                f"blocks must be one or more counts >= 1 (one per stage), got {blocks}."
            )
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        self.stages, channels = residual_stages(width, blocks)
        self.head = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, num_classes, 1),
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d) and module.out_channels != num_classes:
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """N × 3 × H × W images → N × num_classes × H × W scores."""
        scores = self.head(self.stages(self.stem(x)))
        return functional.interpolate(
            scores, size=x.shape[-2:], mode="bilinear", align_corners=False
        )
