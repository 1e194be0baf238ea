"""StreamingImageNet: ImageNet MDS samples as (3 × crop × crop float tensor, label) pairs.

Reads what the converter writes (``x: jpeg``, ``y: int``) and mosaicml-streaming's ImageNet
datasets alike. Training samples get RandomResizedCrop + flip drawn from a generator seeded by
(shuffle_seed, epoch, sample index): a resumed run, with any number of workers or ranks,
augments every sample exactly as the uninterrupted run did. Evaluation samples are resized and
centre-cropped. See :mod:`recipes.imagenet.transforms`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from recipes.imagenet.transforms import eval_transform, open_image, to_tensor, train_transform
from streaming_lightning import StreamingDataset
from streaming_lightning.errors import ConfigError

#: The usual evaluation resize for a crop: 256 for 224 (a crop of 87.5% of the short side).
RESIZE_PER_CROP = 256 / 224


class StreamingImageNet(StreamingDataset):
    """ImageNet from MDS shards (``x`` JPEG, ``y`` class index) as ``(tensor, label)`` pairs.

    Takes StreamingDataset's arguments plus:

    - ``crop_size``: side of the square tensors (default 224).
    - ``resize_size``: short side before the evaluation centre crop (default: ``crop_size`` ×
      256/224, so 256 for 224; lower crops keep the same proportion of the image).
    - ``augment``: random crop and flip (default: on for the ``train`` split).
    """

    def __init__(
        self,
        *,
        crop_size: int = 224,
        resize_size: int | None = None,
        augment: bool | None = None,
        **kwargs: Any,
    ) -> None:
        crop_size = int(crop_size)
        resize_size = round(crop_size * RESIZE_PER_CROP) if resize_size is None else resize_size
        if crop_size < 1:
            raise ConfigError(f"crop_size (data.options.crop_size) must be >= 1, got {crop_size}.")
        if int(resize_size) < crop_size:
            raise ConfigError(
                f"resize_size (data.options.resize_size) is {resize_size}, smaller than crop_size "
                f"{crop_size}: the centre crop would leave the image. Use at least {crop_size}."
            )
        super().__init__(**kwargs)
        self.crop_size = crop_size
        self.resize_size = int(resize_size)
        self.augment = kwargs.get("split") == "train" if augment is None else bool(augment)

    def get_item(self, index: int) -> tuple[torch.Tensor, int]:
        sample = super().get_item(index)
        image = open_image(sample["x"])
        if self.augment:
            rng = np.random.default_rng((self.shuffle_seed, self.epoch, index))
            array = train_transform(image, self.crop_size, rng)
        else:
            array = eval_transform(image, self.resize_size, self.crop_size)
        return to_tensor(array), int(sample["y"])
