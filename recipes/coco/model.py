"""A small single-scale grid detector (in the spirit of YOLO v1): a ResNet backbone turns the
image into a G × G grid of features, and a 1 × 1 convolution predicts for every cell an
objectness logit, a box (left, top, right, bottom as fractions of the image, through a
sigmoid) and class logits for the object whose centre the cell holds.

The backbone is a stride-2 3×3 stem and stages of basic blocks (widths w, 2w, 4w, …, each
stage after the first halving the resolution): four stages give a stride of 16, a 19 × 19
grid for 300-pixel inputs (SSD300's coarsest large map) and 4 × 4 for the 64-pixel tests.
``width=64, blocks=(2, 2, 2, 2)`` is a ResNet-18 body; the defaults (``width=16``, one block
per stage) run on a CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from recipes.common.resnet import residual_stages

#: Channels per cell before the class logits: objectness, then the box's four sides.
BOX_CHANNELS = 5


class GridOutputs(NamedTuple):
    """A detector's raw outputs, per image and cell (``G_h × G_w`` grid)."""

    objectness: torch.Tensor  # B × G_h × G_w logits
    boxes: torch.Tensor  # B × G_h × G_w × 4 fractions of the image (sigmoid)
    class_logits: torch.Tensor  # B × G_h × G_w × num_classes (class c is label c + 1)


class GridDetector(nn.Module):
    def __init__(
        self, num_classes: int = 80, width: int = 16, blocks: Sequence[int] = (1, 1, 1, 1)
    ) -> None:
        super().__init__()
        if not blocks or min(blocks) < 1:
            raise ValueError(f"blocks must be counts >= 1 (one per stage), got {blocks}.")
        self.num_classes = num_classes
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        self.stages, channels = residual_stages(width, blocks)
        self.head = nn.Conv2d(channels, BOX_CHANNELS + num_classes, 1)
        for module in self.modules():
            if isinstance(module, nn.Conv2d) and module is not self.head:
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B × (5 + num_classes) × G_h × G_w: see :func:`split_outputs`."""
        return self.head(self.stages(self.stem(x)))  # type: ignore[no-any-return]


def split_outputs(raw: torch.Tensor) -> GridOutputs:
    """The head's channels as named per-cell predictions."""
    cells = raw.permute(0, 2, 3, 1)
    return GridOutputs(
        objectness=cells[..., 0],
        boxes=cells[..., 1:BOX_CHANNELS].sigmoid(),
        class_logits=cells[..., BOX_CHANNELS:],
    )
