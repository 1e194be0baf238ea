"""ImageNet's standard training and evaluation transforms in Pillow and numpy (no torchvision).

- Training: ``RandomResizedCrop(size, scale=(0.08, 1), ratio=(3/4, 4/3))`` then a horizontal
  flip half the time — the box is drawn exactly as torchvision draws it, from a numpy Generator
  the caller seeds, so a resumed run augments every sample as the uninterrupted run did.
- Evaluation: resize the short side to ``resize_size`` (torchvision's ``Resize(int)``
  arithmetic), then a centred ``crop_size`` square (torchvision's ``CenterCrop``).

Both decode JPEGs in *draft mode*: libjpeg scales the image down by 1/2, 1/4 or 1/8 while
decoding (``Image.draft``) as far as the region that is kept still has at least the output's
pixels, so nothing is ever upsampled that a full decode would not have upsampled. It pays off
where the kept region is at least twice the output: large photos (ImageNet has thousands over
1000 px), and low-resolution training (crops of 128-160, the usual progressive-resizing start),
where it cuts the inverse DCT and the resize; a typical 500×375 image cropped to 224 still
decodes in full. The result differs from a full decode only by the filtering libjpeg's scaled
IDCT does instead of Pillow's.

The box computations are pure functions of sizes (and the generator), so their bounds are
testable without images.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
SCALE = (0.08, 1.0)
RATIO = (3 / 4, 4 / 3)
#: Attempts at a box with the drawn area and aspect before falling back to a central crop.
ATTEMPTS = 10


class Box(NamedTuple):
    """A crop in pixels of the original image: left, top, width, height."""

    left: int
    top: int
    width: int
    height: int


def random_resized_crop_box(
    width: int,
    height: int,
    rng: np.random.Generator,
    scale: tuple[float, float] = SCALE,
    ratio: tuple[float, float] = RATIO,
) -> Box:
    """torchvision's ``RandomResizedCrop.get_params``: a box covering a uniform fraction in
    ``scale`` of the area with a log-uniform aspect (width/height) in ``ratio``; after
    ``ATTEMPTS`` boxes that do not fit, the largest central box whose aspect is in ``ratio``."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(ATTEMPTS):
        target_area = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
        w = round(math.sqrt(target_area * aspect))
        h = round(math.sqrt(target_area / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return Box(left, top, w, h)
    if width / height < min(ratio):
        w, h = width, round(width / min(ratio))
    elif width / height > max(ratio):
        w, h = round(height * max(ratio)), height
    else:
        w, h = width, height
    return Box((width - w) // 2, (height - h) // 2, w, h)


def resized_shape(width: int, height: int, short: int) -> tuple[int, int]:
    """The (width, height) with the short side ``short`` and the aspect kept, the long side
    truncated as torchvision's ``Resize(int)`` does."""
    if width <= height:
        return short, int(short * height / width)
    return int(short * width / height), short


def center_crop_box(width: int, height: int, size: int) -> Box:
    """torchvision's ``CenterCrop(size)`` of a ``width`` × ``height`` image (which must be at
    least ``size`` on each side)."""
    return Box(round((width - size) / 2), round((height - size) / 2), size, size)


def open_image(value: object) -> Image.Image:
    """A stored ``x`` as a PIL image: the ``jpeg`` coder's lazily-opened file, a ``pil``
    image, or raw encoded bytes (a dataset written with the ``bytes`` encoding)."""
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        from io import BytesIO

        return Image.open(BytesIO(bytes(value)))
    raise TypeError(f"Expected an image or encoded image bytes, got {type(value).__name__}.")


def _decode_at_least(image: Image.Image, width: int, height: int) -> tuple[Image.Image, float]:
    """``image`` in RGB, decoded at the smallest JPEG draft scale that keeps it at least
    ``width`` × ``height``; returns it and the scale (original pixels per decoded pixel).

    Images that are not unloaded JPEGs (PNG, raw pixels, already decoded) come back at scale 1.
    """
    original = image.width
    drafted = image.draft("RGB", (max(1, width), max(1, height)))
    scale = original / drafted[1][2] if drafted else 1.0
    return (image if image.mode == "RGB" else image.convert("RGB")), scale


def train_transform(
    image: Image.Image,
    size: int,
    rng: np.random.Generator,
    scale: tuple[float, float] = SCALE,
    ratio: tuple[float, float] = RATIO,
) -> np.ndarray:
    """RandomResizedCrop to ``size`` × ``size`` and a random horizontal flip: HWC uint8."""
    box = random_resized_crop_box(image.width, image.height, rng, scale, ratio)
    # Decode so the kept box still has >= size pixels each way (never upsample for speed).
    need_w = math.ceil(image.width * size / box.width)
    need_h = math.ceil(image.height * size / box.height)
    rgb, factor = _decode_at_least(image, need_w, need_h)
    region = (
        box.left / factor,
        box.top / factor,
        (box.left + box.width) / factor,
        (box.top + box.height) / factor,
    )
    out = rgb.resize((size, size), Image.Resampling.BILINEAR, box=region)
    if rng.random() < 0.5:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.asarray(out)


def eval_transform(image: Image.Image, resize_size: int, crop_size: int) -> np.ndarray:
    """Short side to ``resize_size``, then the centred ``crop_size`` square: HWC uint8."""
    target = resized_shape(image.width, image.height, resize_size)
    rgb, _ = _decode_at_least(image, *target)
    resized = rgb.resize(target, Image.Resampling.BILINEAR)
    box = center_crop_box(*target, crop_size)
    return np.asarray(resized.crop((box.left, box.top, box.left + box.width, box.top + box.height)))


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """HWC uint8 → CHW float32, normalised by the ImageNet channel statistics."""
    scaled = (image.astype(np.float32) * np.float32(1 / 255) - MEAN) / STD
    return torch.from_numpy(np.ascontiguousarray(scaled.transpose(2, 0, 1)))
