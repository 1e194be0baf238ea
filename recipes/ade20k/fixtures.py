"""A small dataset in ADE20K's exact raw layout (``ADEChallengeData2016/images/training/
ADE_train_<uid>.jpg``, ``.../annotations/training/ADE_train_<uid>.png``, the same for
validation), real JPEGs and 8-bit label PNGs written by Pillow, for tests and demos — no
download.

Like the real thing, sizes vary from image to image, one image per split is a grayscale JPEG,
and label 0 ("other") covers part of every mask. Content is learnable on purpose: each image is
a few rectangles on an "other" background, each rectangle coloured by its class.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from recipes.ade20k.convert import RELEASE, SPLITS

#: Classes the synthetic rectangles use (labels 1..CLASSES; ADE20K has 150).
CLASSES = 5


def class_colour(label: int) -> np.ndarray:
    """The RGB colour of class ``label`` (0, "other", is mid gray)."""
    if label == 0:
        return np.array([128, 128, 128], np.float64)
    return 128 + 110 * np.array([np.sin(label * 2.1), np.sin(label * 2.9 + 1), np.cos(label * 1.3)])


def synthetic_pair(
    size: tuple[int, int], rng: np.random.Generator, classes: int = CLASSES
) -> tuple[np.ndarray, np.ndarray]:
    """A (height × width × 3 uint8 image, height × width uint8 labels) pair: 2-4 rectangles of
    random classes on a background of label 0, each drawn in its class's colour, plus noise."""
    width, height = size
    labels = np.zeros((height, width), np.uint8)
    for _ in range(int(rng.integers(2, 5))):
        w = int(rng.integers(width // 4, width // 2 + 1))
        h = int(rng.integers(height // 4, height // 2 + 1))
        left = int(rng.integers(0, width - w + 1))
        top = int(rng.integers(0, height - h + 1))
        labels[top : top + h, left : left + w] = rng.integers(1, classes + 1)
    palette = np.stack([class_colour(label) for label in range(classes + 1)])
    image = palette[labels] + rng.normal(0, 12, (height, width, 3))
    return np.clip(image, 0, 255).astype(np.uint8), labels


def write_raw(
    root: str,
    train: int = 12,
    val: int = 4,
    size: tuple[int, int] = (48, 40),
    seed: int = 0,
) -> str:
    """Write ``root/ADEChallengeData2016`` with ``train`` and ``val`` pairs; returns the
    ``ADEChallengeData2016`` folder.

    ``size`` is the typical (width, height); each image's sides vary by up to ±25% of it. The
    uids are not consecutive (the release's are not either, after its corrupt files).
    """
    rng = np.random.default_rng(seed)
    release = os.path.join(root, RELEASE)
    for split, count in (("train", train), ("val", val)):
        images = os.path.join(release, "images", SPLITS[split])
        annotations = os.path.join(release, "annotations", SPLITS[split])
        os.makedirs(images, exist_ok=True)
        os.makedirs(annotations, exist_ok=True)
        uids = np.sort(rng.choice(np.arange(1, 10 * count + 1), count, replace=False))
        for n, uid in enumerate(uids):
            jitter = rng.uniform(0.75, 1.25, 2)
            shape = (max(8, round(size[0] * jitter[0])), max(8, round(size[1] * jitter[1])))
            pixels, labels = synthetic_pair(shape, rng)
            image = Image.fromarray(pixels)
            if n == 1:
                image = image.convert("L")
            name = f"ADE_{split}_{uid:08d}"
            image.save(os.path.join(images, f"{name}.jpg"), format="JPEG", quality=90)
            Image.fromarray(labels).save(os.path.join(annotations, f"{name}.png"), format="PNG")
    return release
