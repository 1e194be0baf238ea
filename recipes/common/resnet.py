"""Residual building blocks shared by the image recipes (He et al. 2016, basic blocks)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with batch norm and a shortcut (a 1×1 projection when the shape
    changes)."""

    def __init__(self, inputs: int, outputs: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or inputs != outputs:
            self.shortcut = nn.Sequential(
                nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


def residual_stages(width: int, blocks: Sequence[int]) -> tuple[nn.Sequential, int]:
    """Stages of basic blocks with widths w, 2w, 4w, …; every stage after the first halves
    the resolution in its first block. Returns (the stages, their output channels)."""
    layers: list[nn.Module] = []
    inputs = width
    for stage, count in enumerate(blocks):
        outputs = width * 2**stage
        for block in range(count):
            layers.append(BasicBlock(inputs, outputs, 2 if stage and not block else 1))
            inputs = outputs
    return nn.Sequential(*layers), inputs
