"""CIFAR10: convert the official python batches to MDS, stream them as augmented tensors,
train a small ResNet (``python train.py yamls/cifar10.yaml``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from recipes.common.lazy import lazy_attributes

if TYPE_CHECKING:
    from recipes.cifar10.dataset import StreamingCIFAR10

# The dataset class imports torch; the converter does not need it (recipes.common.lazy).
__getattr__ = lazy_attributes(__name__, {"StreamingCIFAR10": "recipes.cifar10.dataset"})

__all__ = ["StreamingCIFAR10"]
