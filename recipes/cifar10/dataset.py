"""StreamingCIFAR10: CIFAR10 MDS samples as (3×32×32 float tensor, label) training pairs.

Reads either image format the converter writes (a 32×32×3 uint8 array, or PNG/PIL from
mosaicml-streaming's converter). Training-time augmentation is the standard one — a random
32×32 crop of the image padded by 4 pixels, and a horizontal flip half the time — drawn from
a generator seeded by (shuffle_seed, epoch, sample index): a resumed run, with any number of
workers or ranks, augments every sample exactly as the uninterrupted run did.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from streaming_lightning import StreamingDataset

MEAN = np.array([0.4914, 0.4822, 0.4465], np.float32)
STD = np.array([0.2470, 0.2435, 0.2616], np.float32)
PAD = 4


def as_array(image: Any) -> np.ndarray:
    """A stored CIFAR image (uint8 array, or a PIL image) as 32×32×3 uint8."""
    array = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image, np.uint8)
    if array.shape != (32, 32, 3):
        raise ValueError(f"CIFAR10 images are 32×32×3, got {array.shape}.")
    return array


def crop_and_flip(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random 32×32 window of the zero-padded image, flipped left-right half the time."""
    padded = np.pad(image, ((PAD, PAD), (PAD, PAD), (0, 0)))
    top, left = rng.integers(0, 2 * PAD + 1, size=2)
    window = padded[top : top + 32, left : left + 32]
    return window[:, ::-1] if rng.random() < 0.5 else window


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """HWC uint8 → CHW float32, normalised by the CIFAR10 channel statistics."""
    scaled = (image.astype(np.float32) / 255.0 - MEAN) / STD
    return torch.from_numpy(np.ascontiguousarray(scaled.transpose(2, 0, 1)))


class StreamingCIFAR10(StreamingDataset):
    """CIFAR10 from MDS shards (``x`` image, ``y`` label) as ``(tensor, label)`` pairs.

    Takes StreamingDataset's arguments plus ``augment`` (default: on for the ``train`` split).
    """

    def __init__(self, *, augment: bool | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.augment = kwargs.get("split") == "train" if augment is None else bool(augment)

    def get_item(self, index: int) -> tuple[torch.Tensor, int]:
        sample = super().get_item(index)
        image = as_array(sample["x"])
        if self.augment:
            rng = np.random.default_rng((self.shuffle_seed, self.epoch, index))
            image = crop_and_flip(image, rng)
        return to_tensor(image), int(sample["y"])
