"""StreamingADE20K: ADE20K MDS samples as (3 × S × S float image, S × S int64 labels) pairs.

Reads what the converter writes (``uid: bytes``, ``x: jpeg``, ``y: png``) and
mosaicml-streaming's ADE20K datasets alike. Training samples are scaled, cropped and flipped
jointly with their masks, and their colours distorted, by a generator seeded by (shuffle_seed, epoch, sample index): a
resumed run, with any number of workers or ranks, augments every sample exactly as the
uninterrupted run did. Evaluation samples are resized to ``crop_size`` squares. Labels follow
Composer's convention: classes 0-149, and -1 (:data:`IGNORE_INDEX`) for ADE20K's "other" and
for padding. See :mod:`recipes.ade20k.transforms`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from recipes.ade20k.transforms import (
    IGNORE_INDEX,
    eval_transform,
    open_image,
    to_target,
    to_tensor,
    train_transform,
)
from streaming_lightning import StreamingDataset
from streaming_lightning.errors import ConfigError

__all__ = ["IGNORE_INDEX", "StreamingADE20K"]


class StreamingADE20K(StreamingDataset):
    """ADE20K from MDS shards (``x`` JPEG, ``y`` PNG label map) as ``(image, target)`` tensors.

    Takes StreamingDataset's arguments plus:

    - ``crop_size``: side of the square tensors (default 512, the usual ADE20K crop).
    - ``base_size``: short side of the image at scale 1 before the training crop (default:
      ``crop_size``).
    - ``min_scale``, ``max_scale``: range of the random scale of the short side (0.5-2).
    - ``augment``: random scale, crop and flip (default: on for the ``train`` split).
    - ``photometric``: with ``augment``, also mmsegmentation's random brightness, contrast,
      saturation and hue (default: on).
    """

    def __init__(
        self,
        *,
        crop_size: int = 512,
        base_size: int | None = None,
        min_scale: float = 0.5,
        max_scale: float = 2.0,
        augment: bool | None = None,
        photometric: bool = True,
        **kwargs: Any,
    ) -> None:
        crop_size = int(crop_size)
        base_size = crop_size if base_size is None else int(base_size)
        if crop_size < 1 or base_size < 1:
            raise ConfigError(
                f"crop_size and base_size (data.options) must be >= 1, got {crop_size} and "
                f"{base_size}."
            )
        if not 0 < float(min_scale) <= float(max_scale):
            raise ConfigError(
                f"data.options.min_scale and max_scale must satisfy 0 < min_scale <= max_scale, "
                f"got {min_scale} and {max_scale}."
            )
        super().__init__(**kwargs)
        self.crop_size = crop_size
        self.base_size = base_size
        self.scale = (float(min_scale), float(max_scale))
        self.augment = kwargs.get("split") == "train" if augment is None else bool(augment)
        self.photometric = bool(photometric)

    def get_item(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        sample = super().get_item(index)
        image, mask = open_image(sample["x"]), open_image(sample["y"])
        if self.augment:
            rng = np.random.default_rng((self.shuffle_seed, self.epoch, index))
            pixels, labels = train_transform(
                image, mask, self.crop_size, self.base_size, rng, self.scale, self.photometric
            )
        else:
            pixels, labels = eval_transform(image, mask, self.crop_size)
        return to_tensor(pixels), to_target(labels)
