"""COCO 2017 object detection: convert the release (JPEGs unchanged, boxes as image fractions,
labels 1..80) to MDS in mosaicml-streaming's columns, stream it as augmented image/box tensors,
train a small grid detector (``python train.py yamls/coco.yaml``)."""

from recipes.coco.dataset import StreamingCOCO, collate_detection

__all__ = ["StreamingCOCO", "collate_detection"]
