"""COCO for ``train.py``: StreamingCOCO batches (padded by :func:`collate_detection`) into a
grid detector, trained YOLO-v1 style.

The loss assigns each ground-truth box to the grid cell holding its centre (the largest box
when several centres share a cell: one object per cell), then adds objectness binary
cross-entropy over every cell, class cross-entropy over the assigned cells and ``BOX_WEIGHT``
× the L1 distance of their predicted (left, top, right, bottom) to the box. A batch without
boxes trains objectness only (every cell is background).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from recipes.coco.dataset import StreamingCOCO, collate_detection
from recipes.coco.model import GridDetector, split_outputs
from recipes.common.task import Task
from streaming_lightning.errors import ConfigError

#: Weight of the box L1 term (YOLO v1's λ_coord).
BOX_WEIGHT = 5.0


@dataclass
class ModelConfig:
    #: Object classes: 80 for COCO (labels 1..80 index categories.json; 0 is background).
    num_classes: int = 80
    #: Channels of the stem and first stage (then 2x, 4x, ...).
    width: int = 16
    #: Residual blocks per stage; the stride is 2 × 2^(stages - 1): four stages give 16.
    blocks: list[int] = field(default_factory=lambda: [1, 1, 1, 1])


def build_model(config: Any) -> nn.Module:
    blocks = [int(count) for count in config.blocks]
    if not blocks or min(blocks) < 1:
        raise ConfigError(f"model.blocks must be counts >= 1 (one per stage), got {blocks}.")
    if int(config.num_classes) < 1 or int(config.width) < 1:
        raise ConfigError("model.num_classes and model.width must be >= 1.")
    return GridDetector(num_classes=int(config.num_classes), width=int(config.width), blocks=blocks)


def assign_cells(
    boxes: torch.Tensor, mask: torch.Tensor, grid: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Which box each occupied cell predicts: (flat cell indexes into B × G_h × G_w, the
    boxes' flat indexes into B × K), one box per cell — the largest of those centred there
    (ties: the later one)."""
    rows, cols = grid
    image, slot = mask.nonzero(as_tuple=True)
    chosen = boxes[image, slot]
    cx = (chosen[:, 0] + chosen[:, 2]) / 2
    cy = (chosen[:, 1] + chosen[:, 3]) / 2
    col = (cx * cols).long().clamp(0, cols - 1)
    row = (cy * rows).long().clamp(0, rows - 1)
    cell = (image * rows + row) * cols + col
    area = (chosen[:, 2] - chosen[:, 0]).clamp(min=0) * (chosen[:, 3] - chosen[:, 1]).clamp(min=0)
    # Sorted by cell, then area (< 4 apart): the last of each cell's run is its largest box.
    order = torch.sort(cell.double() * 4 + area.double(), stable=True).indices
    cell = cell[order]
    last = torch.ones_like(cell, dtype=torch.bool)
    last[:-1] = cell[1:] != cell[:-1]
    flat_box = (image * mask.shape[1] + slot)[order]
    return cell[last], flat_box[last]


def detection_loss(model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss of a :func:`collate_detection` batch (see the module docstring), with
    objectness accuracy over all cells and, when the batch has boxes, the assigned cells'
    class accuracy and mean box L1."""
    out = split_outputs(model(batch["image"]))
    rows, cols = out.objectness.shape[1:]
    cell, box = assign_cells(batch["boxes"], batch["box_mask"], (rows, cols))
    objectness = out.objectness.reshape(-1)
    target = torch.zeros_like(objectness)
    target[cell] = 1.0
    loss = functional.binary_cross_entropy_with_logits(objectness, target)
    metrics = {"objectness_accuracy": ((objectness > 0) == (target > 0.5)).float().mean()}
    if cell.numel():
        logits = out.class_logits.reshape(-1, out.class_logits.shape[-1])[cell]
        classes = batch["labels"].reshape(-1)[box] - 1
        predicted = out.boxes.reshape(-1, 4)[cell]
        l1 = (predicted - batch["boxes"].reshape(-1, 4)[box]).abs().mean()
        loss = loss + functional.cross_entropy(logits, classes) + BOX_WEIGHT * l1
        metrics["class_accuracy"] = (logits.argmax(dim=1) == classes).float().mean()
        metrics["box_l1"] = l1.detach()
    return loss, metrics


TASK = Task(
    name="coco",
    dataset_class=StreamingCOCO,
    model_config=ModelConfig,
    build_model=build_model,
    loss=detection_loss,
    metric_names=("objectness_accuracy", "class_accuracy", "box_l1"),
    collate=collate_detection,
)
