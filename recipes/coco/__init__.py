"""COCO 2017 object detection: convert the release (JPEGs unchanged, boxes as image fractions,
labels 1..80) to MDS in mosaicml-streaming's columns, stream it as augmented image/box tensors,
train a small grid detector (``python train.py yamls/coco.yaml``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from recipes.common.lazy import lazy_attributes

if TYPE_CHECKING:
    from recipes.coco.dataset import StreamingCOCO, collate_detection

# The dataset class imports torch; the converter does not need it (recipes.common.lazy).
__getattr__ = lazy_attributes(
    __name__, {"StreamingCOCO": "recipes.coco.dataset", "collate_detection": "recipes.coco.dataset"}
)

__all__ = ["StreamingCOCO", "collate_detection"]
