"""Joint image + label-map transforms for semantic segmentation, in Pillow and numpy (no
torchvision).

Every geometric step is applied to the image and its mask alike, so a pixel keeps its label:

- Training (mmsegmentation's and Composer's ADE20K pipeline): scale the image so its short
  side is ``base_size`` × a uniform factor in ``scale`` (0.5-2 by default, aspect kept), take a
  random ``crop_size`` square of it — padded at the right and bottom where the scaled image is
  smaller, the image with the ImageNet mean (about 0 after normalisation) and the mask with label 0
  ("other", ignored) — then flip both horizontally half the time. The draws come from a numpy
  Generator the caller seeds, so a resumed run augments every sample as the first run did.
- Evaluation: resize both to ``crop_size`` × ``crop_size`` (Composer's evaluation resize; the
  aspect is not kept, so every pixel of the image is scored and batches stack).

Images are resampled bilinearly, masks with NEAREST: a label is never interpolated into
another. Only the crop is resampled (Pillow's ``resize(box=...)``), never the whole scaled
image, and both use the same box, so they stay aligned to the sub-pixel.

Labels: ADE20K's 0 ("other") becomes :data:`IGNORE_INDEX` (-1) and classes 1-150 become 0-149,
Composer's ``ignore_background`` convention — the loss and the metrics skip -1.

The placement is a pure function of sizes and the generator, testable without images.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from PIL import Image

from recipes.imagenet.transforms import MEAN, STD, open_image, to_tensor

__all__ = [
    "IGNORE_INDEX",
    "MEAN",
    "SCALE",
    "STD",
    "Placement",
    "eval_transform",
    "label_map",
    "open_image",
    "scale_crop_placement",
    "source_box",
    "to_target",
    "to_tensor",
    "train_transform",
]

#: Range of the random scale of the short side relative to ``base_size``.
SCALE = (0.5, 2.0)
#: Target value of unlabelled pixels (ADE20K's 0, "other", and padding).
IGNORE_INDEX = -1
#: Padding colour of the image: the ImageNet mean, which normalises to about 0.
PAD_RGB = np.round(MEAN * 255).astype(np.uint8)


class Placement(NamedTuple):
    """A training crop: the image is scaled to ``width`` × ``height`` and the crop's top-left
    corner is at (``left``, ``top``) of the scaled image."""

    width: int
    height: int
    left: int
    top: int


def scale_crop_placement(
    width: int,
    height: int,
    crop: int,
    base: int,
    rng: np.random.Generator,
    scale: tuple[float, float] = SCALE,
) -> Placement:
    """Scale a ``width`` × ``height`` image so its short side is ``base`` × U(``scale``), and
    place a ``crop`` square uniformly within it (at the origin along a side shorter than
    ``crop``, which is then padded)."""
    factor = base * rng.uniform(scale[0], scale[1]) / min(width, height)
    scaled_w = max(1, round(width * factor))
    scaled_h = max(1, round(height * factor))
    left = int(rng.integers(0, max(0, scaled_w - crop) + 1))
    top = int(rng.integers(0, max(0, scaled_h - crop) + 1))
    return Placement(scaled_w, scaled_h, left, top)


def source_box(
    placement: Placement, crop: int, width: int, height: int
) -> tuple[tuple[int, int], tuple[float, float, float, float]]:
    """The crop's part covered by the scaled image, as (its (width, height) in output pixels,
    the box it comes from in a ``width`` × ``height`` source). Called with the image's and the
    mask's sizes, it gives both the same region."""
    covered_w = min(crop, placement.width - placement.left)
    covered_h = min(crop, placement.height - placement.top)
    x_scale = width / placement.width
    y_scale = height / placement.height
    box = (
        placement.left * x_scale,
        placement.top * y_scale,
        (placement.left + covered_w) * x_scale,
        (placement.top + covered_h) * y_scale,
    )
    return (covered_w, covered_h), box


def label_map(mask: Image.Image) -> Image.Image:
    """``mask`` as an ``L`` image of its labels (a palette image's indexes are its labels)."""
    if mask.mode == "L":
        return mask
    if mask.mode == "P":
        return Image.fromarray(np.asarray(mask))
    raise ValueError(f"A label map must be an L or P image, got mode {mask.mode}.")


def _rgb(image: Image.Image) -> Image.Image:
    return image if image.mode == "RGB" else image.convert("RGB")


def train_transform(
    image: Image.Image,
    mask: Image.Image,
    crop: int,
    base: int,
    rng: np.random.Generator,
    scale: tuple[float, float] = SCALE,
) -> tuple[np.ndarray, np.ndarray]:
    """Random scale, ``crop`` × ``crop`` crop (padded) and horizontal flip of an image and its
    mask: (HWC uint8 image, HW uint8 labels, 0 where padded)."""
    placement = scale_crop_placement(image.width, image.height, crop, base, rng, scale)
    (covered_w, covered_h), image_box = source_box(placement, crop, image.width, image.height)
    labels = label_map(mask)
    _, mask_box = source_box(placement, crop, labels.width, labels.height)
    pixels = np.empty((crop, crop, 3), np.uint8)
    pixels[:] = PAD_RGB
    pixels[:covered_h, :covered_w] = np.asarray(
        _rgb(image).resize((covered_w, covered_h), Image.Resampling.BILINEAR, box=image_box)
    )
    target = np.zeros((crop, crop), np.uint8)
    target[:covered_h, :covered_w] = np.asarray(
        labels.resize((covered_w, covered_h), Image.Resampling.NEAREST, box=mask_box)
    )
    if rng.random() < 0.5:
        pixels, target = pixels[:, ::-1], target[:, ::-1]
    return np.ascontiguousarray(pixels), np.ascontiguousarray(target)


def eval_transform(
    image: Image.Image, mask: Image.Image, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Both resized to ``size`` × ``size``: (HWC uint8 image, HW uint8 labels)."""
    pixels = np.asarray(_rgb(image).resize((size, size), Image.Resampling.BILINEAR))
    target = np.asarray(label_map(mask).resize((size, size), Image.Resampling.NEAREST))
    return pixels, target


def to_target(labels: np.ndarray) -> torch.Tensor:
    """HW uint8 ADE20K labels → HW int64 targets: 0 → IGNORE_INDEX, class k → k - 1."""
    target = labels.astype(np.int64) - 1
    target[labels == 0] = IGNORE_INDEX
    return torch.from_numpy(target)
