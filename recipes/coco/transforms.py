"""COCO's detection transforms in Pillow and numpy (no torchvision): images and their boxes move
together.

- Training: a horizontal flip half the time (boxes mirrored: left becomes ``1 - right``), the
  image stretched to a ``size`` × ``size`` square as SSD300 does (boxes are fractions of the
  image, so they keep their values), and optionally a photometric jitter of brightness,
  contrast and saturation. Every draw comes from a numpy Generator the caller seeds, so a
  resumed run augments every sample as the uninterrupted run did; the generator is always
  drawn the same number of times, whatever the outcome.
- Evaluation: the resize only.

JPEGs are decoded in draft mode (libjpeg scales by 1/2, 1/4 or 1/8 while decoding) as far as
both sides stay at least ``size``: a 640 × 480 COCO photo decodes at 1/2 for a 224 square.
Draft mode scales the whole image, so box fractions still hold.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

#: ITU-R 601 luma weights (Pillow's ``convert("L")``): the grey a saturation change fades to.
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def resize_square(image: Image.Image, size: int) -> Image.Image:
    """``image`` in RGB stretched to ``size`` × ``size`` (decoded at the smallest JPEG draft
    scale that keeps both sides at least ``size``)."""
    image.draft("RGB", (size, size))
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return rgb.resize((size, size), Image.Resampling.BILINEAR)


def flip_boxes(boxes: np.ndarray) -> np.ndarray:
    """Boxes (left, top, right, bottom fractions) of the horizontally mirrored image."""
    flipped = boxes.copy()
    flipped[:, 0] = 1 - boxes[:, 2]
    flipped[:, 2] = 1 - boxes[:, 0]
    return flipped


def jitter_colours(image: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Brightness, contrast and saturation each scaled by a factor drawn uniformly from
    ``[1 - strength, 1 + strength]`` (in that order, as torchvision's ColorJitter defines
    them: contrast about the mean grey, saturation towards each pixel's grey): HWC uint8."""
    brightness, contrast, saturation = rng.uniform(1 - strength, 1 + strength, 3)
    pixels = image.astype(np.float32) * np.float32(brightness)
    pixels = np.clip(pixels, 0, 255)
    grey_mean = float((pixels @ LUMA).mean())
    pixels = np.clip((pixels - grey_mean) * np.float32(contrast) + grey_mean, 0, 255)
    grey = (pixels @ LUMA)[..., None]
    pixels = np.clip((pixels - grey) * np.float32(saturation) + grey, 0, 255)
    return np.rint(pixels).astype(np.uint8)


def train_transform(
    image: Image.Image,
    boxes: np.ndarray,
    size: int,
    rng: np.random.Generator,
    jitter: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Flip half the time, resize to ``size`` × ``size``, jitter colours when ``jitter`` > 0:
    (HWC uint8 image, its boxes)."""
    flip = rng.random() < 0.5
    out = resize_square(image, size)
    if flip:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        boxes = flip_boxes(boxes)
    array = np.asarray(out)
    if jitter > 0:
        array = jitter_colours(array, rng, jitter)
    return array, boxes


def eval_transform(image: Image.Image, size: int) -> np.ndarray:
    """The image resized to ``size`` × ``size``: HWC uint8 (its boxes are unchanged)."""
    return np.asarray(resize_square(image, size))


def stored_boxes(boxes: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A sample's stored boxes as training targets: background rows (an empty image's
    placeholder) dropped, coordinates clipped into the image (COCO's boxes may overshoot the
    edge by a fraction of a pixel). Returns (K × 4 float32, K int64)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    labels = np.asarray(labels, np.int64).reshape(-1)
    keep = labels != 0
    return np.clip(boxes[keep], 0.0, 1.0), labels[keep]
