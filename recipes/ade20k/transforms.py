"""Joint image + label-map transforms for semantic segmentation, in Pillow and numpy (no
torchvision).

Every geometric step is applied to the image and its mask alike, so a pixel keeps its label:

- Training (mmsegmentation's and Composer's ADE20K pipeline): scale the image so its short
  side is ``base_size`` × a uniform factor in ``scale`` (0.5-2 by default, aspect kept), take a
  random ``crop_size`` square of it — padded at the right and bottom where the scaled image is
  smaller, the image with the ImageNet mean (about 0 after normalisation) and the mask with label 0
  ("other", ignored) — then flip both horizontally half the time, and (``photometric``) distort
  the image's colours as mmsegmentation's ``PhotoMetricDistortion`` does: brightness, contrast,
  saturation and hue, each half the time. The colour draws come after the geometric ones and
  never touch the mask or the padding, so turning them off changes nothing else. The draws
  come from a numpy Generator the caller seeds, so a resumed run augments every sample as the
  first run did.
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
    "photometric_distortion",
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
#: mmsegmentation's PhotoMetricDistortion ranges: brightness delta (0-255 scale), contrast and
#: saturation factors, and hue delta in OpenCV's half-degrees (0-180 for a full turn).
BRIGHTNESS = 32.0
CONTRAST = (0.5, 1.5)
SATURATION = (0.5, 1.5)
HUE = 18
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
    photometric: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Random scale, ``crop`` × ``crop`` crop (padded), horizontal flip and (``photometric``)
    colour distortion of an image and its mask: (HWC uint8 image, HW uint8 labels, 0 where
    padded)."""
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
    flip = rng.random() < 0.5
    if photometric:
        pixels[:covered_h, :covered_w] = photometric_distortion(pixels[:covered_h, :covered_w], rng)
    if flip:
        pixels, target = pixels[:, ::-1], target[:, ::-1]
    return np.ascontiguousarray(pixels), np.ascontiguousarray(target)


def photometric_distortion(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """HWC uint8 RGB ``pixels`` with mmsegmentation's random colour distortion: a brightness
    shift, then contrast either first or last, saturation and hue — each step drawn half the
    time. Hue and saturation go through Pillow's HSV, whose hue turns in 256 steps, so the
    OpenCV half-degree range is rescaled to it."""
    out = pixels.astype(np.float32)
    if rng.random() < 0.5:
        out = np.clip(out + rng.uniform(-BRIGHTNESS, BRIGHTNESS), 0, 255)
    contrast_first = rng.random() < 0.5

    def contrast(values: np.ndarray) -> np.ndarray:
        if rng.random() < 0.5:
            return np.clip(values * rng.uniform(*CONTRAST), 0, 255)
        return values

    if contrast_first:
        out = contrast(out)
    saturate = rng.uniform(*SATURATION) if rng.random() < 0.5 else None
    shift = int(rng.integers(-HUE, HUE + 1)) if rng.random() < 0.5 else None
    if saturate is not None or shift is not None:
        rgb = Image.fromarray(np.round(out).astype(np.uint8))
        hsv = np.asarray(rgb.convert("HSV")).astype(np.float32)
        if saturate is not None:
            hsv[..., 1] = np.clip(hsv[..., 1] * saturate, 0, 255)
        if shift is not None:
            hsv[..., 0] = (hsv[..., 0] + shift * 256 / 180) % 256
        shifted = (np.round(hsv) % 256).astype(np.uint8)  # a hue of 255.6 wraps round to 0
        hsv_image = Image.frombytes("HSV", rgb.size, shifted.tobytes())
        out = np.asarray(hsv_image.convert("RGB")).astype(np.float32)
    if not contrast_first:
        out = contrast(out)
    return np.round(out).astype(np.uint8)


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
