"""ImageNet (ILSVRC): convert the train/ and val/ class folders to MDS (the JPEGs unchanged),
stream them as augmented tensors, train a ResNet (``python train.py yamls/imagenet.yaml``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from recipes.common.lazy import lazy_attributes

if TYPE_CHECKING:
    from recipes.imagenet.dataset import StreamingImageNet

# The dataset class imports torch; the converter does not need it (recipes.common.lazy).
__getattr__ = lazy_attributes(__name__, {"StreamingImageNet": "recipes.imagenet.dataset"})

__all__ = ["StreamingImageNet"]
