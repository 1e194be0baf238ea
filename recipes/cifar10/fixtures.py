"""A small dataset in CIFAR10's exact raw layout (``cifar-10-batches-py``: pickled batches with
``data``/``labels``/``filenames`` and ``batches.meta``), for tests and the demo — no download.

Images are learnable on purpose: each class has its own colour and stripe orientation under
noise, so a small model's loss visibly falls within a few hundred steps.
"""

from __future__ import annotations

import os
import pickle

import numpy as np

from recipes.cifar10.convert import CLASSES, TEST_BATCHES, TRAIN_BATCHES


def synthetic_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """N × 32 × 32 × 3 uint8 images whose content depends on the label."""
    n = len(labels)
    y, x = np.mgrid[0:32, 0:32]
    angle = labels[:, None, None] * (np.pi / len(CLASSES))
    stripes = np.sin((x * np.cos(angle) + y * np.sin(angle)) * 0.8)
    hue = np.stack([np.sin(labels * 0.9), np.sin(labels * 1.7 + 1), np.sin(labels * 2.3 + 2)], 1)
    base = 128 + 60 * stripes[..., None] * hue[:, None, None, :]
    noisy = base + rng.normal(0, 90, (n, 32, 32, 3))
    return np.clip(noisy, 0, 255).astype(np.uint8)


def write_raw(root: str, per_batch: int = 200, test: int = 200, seed: int = 0) -> str:
    """Write ``root/cifar-10-batches-py`` with five train batches of ``per_batch`` images and a
    test batch of ``test``; returns that folder."""
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(folder, exist_ok=True)
    for name, count in [
        *((b, per_batch) for b in TRAIN_BATCHES),
        *((b, test) for b in TEST_BATCHES),
    ]:
        labels = rng.integers(0, len(CLASSES), count)
        images = synthetic_images(labels, rng)
        planes = images.transpose(0, 3, 1, 2).reshape(count, 3072)  # HWC → R, G, B planes
        batch = {
            b"batch_label": name.encode(),
            b"labels": labels.tolist(),
            b"data": planes,
            b"filenames": [f"{name}_{i}.png".encode() for i in range(count)],
        }
        with open(os.path.join(folder, name), "wb") as file:
            pickle.dump(batch, file, protocol=2)
    with open(os.path.join(folder, "batches.meta"), "wb") as file:
        meta = {b"label_names": [c.encode() for c in CLASSES], b"num_cases_per_batch": per_batch}
        pickle.dump(meta, file, protocol=2)
    return folder
