"""A small dataset in ImageNet's exact raw layout (``train/<wnid>/<wnid>_<n>.JPEG`` and
``val/<wnid>/ILSVRC2012_val_<n>.JPEG``), real JPEG files written by Pillow, for tests and
demos — no download.

Like the real thing, sizes vary from image to image and a few files are grayscale or CMYK
JPEGs (ImageNet has both), so decoding paths are exercised. Content is learnable on purpose:
each class has its own colour and stripe orientation under noise.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image


def wnid(index: int) -> str:
    """A WordNet-style id for synthetic class ``index`` (``n`` + 8 digits, sorted by index)."""
    return f"n{1440764 + 1000 * index:08d}"


def synthetic_image(
    label: int, classes: int, size: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """A height × width × 3 uint8 image whose content depends on the label."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    angle = label * np.pi / max(1, classes)
    stripes = np.sin((x * np.cos(angle) + y * np.sin(angle)) * 0.5)
    hue = np.array([np.sin(label * 0.9), np.sin(label * 1.7 + 1), np.sin(label * 2.3 + 2)])
    base = 128 + 70 * stripes[..., None] * hue
    return np.clip(base + rng.normal(0, 20, (height, width, 3)), 0, 255).astype(np.uint8)


def write_raw(
    root: str,
    classes: int = 3,
    train_per_class: int = 12,
    val_per_class: int = 4,
    size: tuple[int, int] = (48, 40),
    seed: int = 0,
) -> str:
    """Write ``root/train`` and ``root/val`` with ``classes`` class folders; returns ``root``.

    ``size`` is the typical (width, height); each image's sides vary by up to ±25% of it.
    """
    rng = np.random.default_rng(seed)
    val_number = 0
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for label in range(classes):
            folder = os.path.join(root, split, wnid(label))
            os.makedirs(folder, exist_ok=True)
            for n in range(count):
                jitter = rng.uniform(0.75, 1.25, 2)
                shape = (max(8, round(size[0] * jitter[0])), max(8, round(size[1] * jitter[1])))
                image = Image.fromarray(synthetic_image(label, classes, shape, rng))
                if n == 1:
                    image = image.convert("L")
                elif n == 2 and label == 0:
                    image = image.convert("CMYK")
                if split == "train":
                    name = f"{wnid(label)}_{n + 1}.JPEG"
                else:
                    val_number += 1
                    name = f"ILSVRC2012_val_{val_number:08d}.JPEG"
                image.save(os.path.join(folder, name), format="JPEG", quality=90)
    return root
