"""CIFAR10's official python release (``cifar-10-batches-py``) → MDS.

The release is six pickled batches: ``data_batch_1`` … ``data_batch_5`` (train, 50,000 images)
and ``test_batch`` (10,000), each a dict with ``data`` (N × 3072 uint8: the red, green and blue
32×32 planes of each image, row-major) and ``labels``. Output columns follow
mosaicml-streaming's CIFAR10 recipe names: ``x`` (the image) and ``y`` (the class index), in
``<out>/train`` and ``<out>/test``.

``--image-format raw`` (default) stores ``x`` as a 32×32×3 uint8 array — fixed-size, so the
dataset decodes whole batches with numpy and nothing has to be decompressed per image;
``png`` stores it as PNG (what mosaicml-streaming's converter writes, as ``pil``), ~40% smaller.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from functools import partial
from typing import Any

import numpy as np

from recipes.common.convert import WriteOptions, convert_split, shared_workers
from streaming_lightning.errors import ConfigError

TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCHES = ["test_batch"]
SPLITS = {"train": TRAIN_BATCHES, "test": TEST_BATCHES}
IMAGE_FORMATS = ("raw", "png")
CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


def columns(image_format: str) -> dict[str, str]:
    if image_format not in IMAGE_FORMATS:
        raise ConfigError(f"--image-format must be one of {IMAGE_FORMATS}, got {image_format!r}.")
    return {"x": "ndarray:uint8:32,32,3" if image_format == "raw" else "png", "y": "int"}


def find_batches(raw: str) -> dict[str, list[str]]:
    """The batch files per split under ``raw`` (the folder holding them, or its parent)."""
    nested = os.path.join(raw, "cifar-10-batches-py")
    root = nested if os.path.isdir(nested) else raw
    found = {
        split: [
            os.path.join(root, name) for name in names if os.path.isfile(os.path.join(root, name))
        ]
        for split, names in SPLITS.items()
    }
    if not any(found.values()):
        raise ConfigError(
            f"No CIFAR10 batches in {raw}: expected {', '.join(TRAIN_BATCHES + TEST_BATCHES)} "
            "(the cifar-10-batches-py folder of the official python release)."
        )
    return found


def read_batch(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(N × 32 × 32 × 3 uint8 images, N int64 labels) of one batch file, checked."""
    with open(path, "rb") as file:
        # The official release is pickled; only files the user points --in at are loaded.
        try:
            batch = pickle.load(file, encoding="bytes")
        except Exception as err:  # pickle raises many kinds on a corrupt or foreign file
            raise ConfigError(f"{path}: not a CIFAR10 python batch ({err}).") from None
    if not isinstance(batch, dict):
        raise ConfigError(f"{path}: not a CIFAR10 python batch (a {type(batch).__name__}).")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if data is None or labels is None:
        raise ConfigError(f"{path}: a CIFAR10 batch needs 'data' and 'labels'.")
    data = np.asarray(data, np.uint8)
    labels = np.asarray(labels, np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise ConfigError(
            f"{path}: data is {data.shape} with {len(labels)} labels; expected N × 3072 and N."
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= len(CLASSES)):
        raise ConfigError(f"{path}: labels outside 0..{len(CLASSES) - 1}.")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # planes → HWC
    return np.ascontiguousarray(images), labels


def encode_batch(path: str, image_format: str) -> Iterator[dict[str, Any]]:
    from PIL import Image

    images, labels = read_batch(path)
    for image, label in zip(images, labels.tolist()):
        if image_format == "png":
            yield {"x": Image.fromarray(image), "y": label}  # the png coder writes the file
        else:
            yield {"x": image, "y": label}


def convert(raw: str, options: WriteOptions, image_format: str = "raw") -> dict[str, str]:
    """Convert every split found under ``raw``; returns {split: merged index path/URL}."""
    cols = columns(image_format)
    encode = partial(encode_batch, image_format=image_format)
    with shared_workers(options.workers):
        return {
            split: convert_split(files, encode, cols, options, split=split, unit="batch")
            for split, files in find_batches(raw).items()
            if files
        }
