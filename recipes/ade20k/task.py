"""ADE20K for ``train.py``: StreamingADE20K batches into a small FCN, per-pixel cross-entropy.

Pixels labelled :data:`IGNORE_INDEX` (ADE20K's "other", and crop padding) count in neither the
loss nor the metrics. The metrics are those of the whole split, as mmsegmentation computes
them: pixel accuracy (correct over labelled pixels), and mean IoU over the classes present in
the split's targets or predictions, from intersections and unions summed over every batch and
rank (:class:`~recipes.common.metrics.Summed`) — not the mean of per-batch mIoUs, which
depends on the batch size. Training logs each batch's own values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from recipes.ade20k.convert import NUM_CLASSES
from recipes.ade20k.dataset import StreamingADE20K
from recipes.ade20k.model import SegmentationFCN
from recipes.ade20k.transforms import IGNORE_INDEX
from recipes.common.metrics import MetricValue, Summed, ratio
from recipes.common.task import Task
from streaming_lightning.errors import ConfigError


@dataclass
class ModelConfig:
    #: Output classes: ADE20K's 150 (targets 0-149; "other" is ignored, not a class).
    num_classes: int = NUM_CLASSES
    #: Channels of the stem and first stage (then 2x, 4x, ...).
    width: int = 16
    #: Residual blocks in each stage; three stages give scores at 1/8 of the input. The
    #: defaults are a CPU-sized model for tests and demos.
    blocks: list[int] = field(default_factory=lambda: [1, 1, 1])


def build_model(config: Any) -> nn.Module:
    blocks = [int(count) for count in config.blocks]
    if not blocks or min(blocks) < 1:
        raise ConfigError(
            f"model.blocks must be one or more counts >= 1 (per stage), got {blocks}."
        )
    if int(config.num_classes) < 1 or int(config.width) < 1:
        raise ConfigError("model.num_classes and model.width must be >= 1.")
    return SegmentationFCN(
        num_classes=int(config.num_classes), width=int(config.width), blocks=blocks
    )


def mean_iou(sums: torch.Tensor) -> torch.Tensor:
    """mIoU from summed (intersections, unions) per class (2 × C): the mean over the classes
    that occur in the targets or the predictions (0 when none does)."""
    intersection, union = sums[0], sums[1]
    present = union > 0
    if not bool(present.any()):
        return sums.new_zeros(())
    return (intersection[present] / union[present]).mean()


def segmentation_metrics(
    scores: torch.Tensor, target: torch.Tensor, ignore_index: int = IGNORE_INDEX
) -> dict[str, MetricValue]:
    """Pixel accuracy and mean IoU of N × C × H × W ``scores`` against N × H × W ``target``,
    over labelled pixels, as sums a split adds up: (correct, labelled) pixels and per-class
    (intersections, unions)."""
    labelled = target != ignore_index
    predicted = scores.argmax(dim=1)[labelled]
    truth = target[labelled]
    classes = scores.shape[1]
    pairs = torch.bincount(truth * classes + predicted, minlength=classes * classes)
    confusion = pairs.reshape(classes, classes).to(scores.dtype)  # [true, predicted]
    intersection = confusion.diagonal()
    union = confusion.sum(dim=0) + confusion.sum(dim=1) - intersection
    counted = scores.new_tensor([float(truth.numel())])
    return {
        "pixel_accuracy": Summed(torch.cat([intersection.sum().reshape(1), counted]), ratio),
        "mean_iou": Summed(torch.stack([intersection, union]), mean_iou),
    }


def segmentation_loss(model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, MetricValue]]:
    """Per-pixel cross-entropy of ``model(images)`` against an (images, targets) batch,
    skipping IGNORE_INDEX pixels."""
    images, target = batch
    scores = model(images)
    if scores.shape[1] <= int(target.max()):
        raise ConfigError(
            f"A target holds class {int(target.max())}, but the model has {scores.shape[1]} "
            "outputs: set model.num_classes to the dataset's class count (150 for ADE20K)."
        )
    loss = functional.cross_entropy(scores, target, ignore_index=IGNORE_INDEX)
    with torch.no_grad():
        metrics = segmentation_metrics(scores.detach().float(), target)
    return loss, metrics


TASK = Task(
    name="ade20k",
    dataset_class=StreamingADE20K,
    model_config=ModelConfig,
    build_model=build_model,
    loss=segmentation_loss,
    metric_names=("pixel_accuracy", "mean_iou"),
)
