"""ImageNet (ILSVRC): convert the train/ and val/ class folders to MDS (the JPEGs unchanged),
stream them as augmented tensors, train a ResNet (``python train.py yamls/imagenet.yaml``)."""

from recipes.imagenet.dataset import StreamingImageNet

__all__ = ["StreamingImageNet"]
