"""A small dataset in COCO 2017's exact raw layout (``train2017/%012d.jpg``,
``val2017/%012d.jpg``, ``annotations/instances_{train,val}2017.json``), real JPEGs written by
Pillow, for tests and demos — no download.

It has what the converter must get right on the real release: non-contiguous category ids
(real COCO ids 1, 3, 18 and 90, listed out of order), sparse image ids listed out of order,
varying image sizes, a grayscale JPEG, images without annotations, a crowd annotation, and a
box that overshoots the image edge by a fraction of a pixel as polygon-derived COCO boxes do.
Content is learnable: every box is a filled rectangle in its category's colour on a noisy grey
background.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
from PIL import Image

#: (id, name, supercategory) of the categories used, in the order the JSON lists them.
CATEGORIES = (
    (18, "dog", "animal"),
    (1, "person", "person"),
    (90, "toothbrush", "indoor"),
    (3, "car", "vehicle"),
)
#: Fill colour of each category's rectangles.
COLOURS = {1: (220, 40, 40), 3: (40, 200, 60), 18: (40, 60, 220), 90: (230, 220, 40)}
#: Every ``EMPTY_EVERY``-th image has no annotations.
EMPTY_EVERY = 5


def _boxes(
    rng: np.random.Generator, width: int, height: int, count: int
) -> list[tuple[float, float, float, float]]:
    """``count`` boxes [x, y, w, h] with 2-decimal coordinates, each at least 1/4 of the
    image's sides and inside it."""
    boxes = []
    for _ in range(count):
        w = float(rng.uniform(0.25, 0.5) * width)
        h = float(rng.uniform(0.25, 0.5) * height)
        x = float(rng.uniform(0, width - w))
        y = float(rng.uniform(0, height - h))
        boxes.append((round(x, 2), round(y, 2), round(w, 2), round(h, 2)))
    return boxes


def draw(
    width: int,
    height: int,
    boxes: list[tuple[float, float, float, float]],
    colours: list[tuple[int, int, int]],
    rng: np.random.Generator,
) -> np.ndarray:
    """A height × width × 3 uint8 image: grey noise with each box filled in its colour (pixels
    whose centre lies inside the box; later boxes on top)."""
    pixels = np.clip(rng.normal(128, 12, (height, width, 3)), 0, 255)
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    for (x, y, w, h), colour in zip(boxes, colours):
        inside = (xs >= x) & (xs < x + w) & (ys >= y) & (ys < y + h)
        pixels[inside] = colour
    return pixels.astype(np.uint8)


def write_raw(
    root: str,
    train: int = 20,
    val: int = 8,
    size: tuple[int, int] = (64, 48),
    seed: int = 0,
) -> str:
    """Write ``train`` and ``val`` images and their annotation files under ``root``; returns
    ``root``. ``size`` is the typical (width, height); each side varies by up to ±25%."""
    rng = np.random.default_rng(seed)
    ids = [cid for cid, _, _ in CATEGORIES]
    annotation_id = 1000
    os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
    for split, count, first_id in (("train", train, 9), ("val", val, 139)):
        folder = os.path.join(root, f"{split}2017")
        os.makedirs(folder, exist_ok=True)
        image_ids = first_id + np.cumsum(rng.integers(1, 5000, count))
        images: list[dict[str, Any]] = []
        annotations: list[dict[str, Any]] = []
        for n, image_id in enumerate(int(i) for i in image_ids):
            jitter = rng.uniform(0.75, 1.25, 2)
            width, height = round(size[0] * jitter[0]), round(size[1] * jitter[1])
            boxes = [] if n % EMPTY_EVERY == 2 else _boxes(rng, width, height, 1 + n % 3)
            categories = [ids[int(rng.integers(len(ids)))] for _ in boxes]
            if n == 0:  # touches the right edge and overshoots it by 0.4 pixel
                x, y, w, h = boxes[0]
                boxes[0] = (x, y, round(width - x + 0.4, 2), h)
            pixels = draw(width, height, boxes, [COLOURS[c] for c in categories], rng)
            image = Image.fromarray(pixels)
            if n == 3:
                image = image.convert("L")  # COCO has grayscale JPEGs
            name = f"{image_id:012d}.jpg"
            image.save(os.path.join(folder, name), format="JPEG", quality=92)
            images.append(
                {
                    "id": image_id,
                    "file_name": name,
                    "height": height,
                    "width": width,
                    "license": 1,
                    "date_captured": "2013-11-14 16:28:13",
                }
            )
            for k, ((x, y, w, h), category) in enumerate(zip(boxes, categories)):
                annotation_id += 1
                annotations.append(
                    {
                        "id": annotation_id,
                        "image_id": image_id,
                        "category_id": category,
                        "bbox": [x, y, w, h],
                        "area": round(w * h, 2),
                        "iscrowd": 1 if (n == 1 and k == 0) else 0,
                        "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]],
                    }
                )
        order = rng.permutation(len(images))  # the release does not list images by id
        document = {
            "info": {"description": "streaming-lightning COCO fixture", "year": 2017},
            "licenses": [{"id": 1, "name": "CC BY 4.0", "url": ""}],
            "images": [images[i] for i in order],
            "annotations": annotations,
            "categories": [
                {"supercategory": sup, "id": cid, "name": name} for cid, name, sup in CATEGORIES
            ],
        }
        path = os.path.join(root, "annotations", f"instances_{split}2017.json")
        with open(path, "w", encoding="utf-8") as file:
            json.dump(document, file)
    return root
