"""CIFAR10: convert the official python batches to MDS, stream them as augmented tensors,
train a small ResNet (``python train.py yamls/cifar10.yaml``)."""

from recipes.cifar10.dataset import StreamingCIFAR10

__all__ = ["StreamingCIFAR10"]
