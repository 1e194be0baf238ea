"""StreamingCOCO: COCO MDS samples as detection targets, and the collate that batches them.

Reads what the converter writes and mosaicml-streaming's COCO datasets alike (``img: jpeg``,
``img_id``, ``htot``, ``wtot``, ``bbox_sizes``, ``bbox_labels``). A sample becomes
``{"image", "boxes", "labels", "image_id"}``: a normalised 3 × S × S tensor, its K boxes as
(left, top, right, bottom) fractions and their labels 1..80. Training samples are flipped (and
optionally colour-jittered) by a generator seeded by (shuffle_seed, epoch, sample index), so a
resumed run, with any number of workers or ranks, augments every sample exactly as the
uninterrupted run did. See :mod:`recipes.coco.transforms`.

Images hold different numbers of boxes, so samples do not stack: :func:`collate_detection`
pads each batch to its largest K, with a mask (padded tensors move to devices and through both
trainers like any batch; lists of tensors would not).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from recipes.coco.transforms import eval_transform, stored_boxes, train_transform
from recipes.imagenet.transforms import open_image, to_tensor
from streaming_lightning import StreamingDataset
from streaming_lightning.errors import ConfigError, CorruptDataError


class StreamingCOCO(StreamingDataset):
    """COCO from MDS shards as ``{"image", "boxes", "labels", "image_id"}`` dicts.

    Takes StreamingDataset's arguments plus:

    - ``image_size``: side of the square image tensors (default 300, SSD300's).
    - ``augment``: random horizontal flip (default: on for the ``train`` split).
    - ``jitter``: with ``augment``, brightness, contrast and saturation each scaled by a
      random factor in [1 - jitter, 1 + jitter] (default 0: off).
    """

    def __init__(
        self,
        *,
        image_size: int = 300,
        augment: bool | None = None,
        jitter: float = 0.0,
        **kwargs: Any,
    ) -> None:
        image_size, jitter = int(image_size), float(jitter)
        if image_size < 1:
            raise ConfigError(
                f"image_size (data.options.image_size) must be >= 1, got {image_size}."
            )
        if not 0 <= jitter < 1:
            raise ConfigError(f"jitter (data.options.jitter) must be in [0, 1), got {jitter}.")
        super().__init__(**kwargs)
        self.image_size = image_size
        self.jitter = jitter
        self.augment = kwargs.get("split") == "train" if augment is None else bool(augment)

    def get_item(self, index: int) -> dict[str, Any]:
        sample = super().get_item(index)
        raw_boxes, raw_labels = sample["bbox_sizes"], sample["bbox_labels"]
        if (
            raw_boxes.ndim != 2
            or raw_boxes.shape[1:] != (4,)
            or raw_labels.shape != (raw_boxes.shape[0],)
        ):
            raise CorruptDataError(
                f"Sample {index}: bbox_sizes has shape {raw_boxes.shape} and bbox_labels "
                f"{raw_labels.shape}; expected K × 4 and K. Convert the dataset again."
            )
        boxes, labels = stored_boxes(raw_boxes, raw_labels)
        image = open_image(sample["img"])
        if self.augment:
            rng = np.random.default_rng((self.shuffle_seed, self.epoch, index))
            array, boxes = train_transform(image, boxes, self.image_size, rng, self.jitter)
        else:
            array = eval_transform(image, self.image_size)
        return {
            "image": to_tensor(array),
            "boxes": torch.from_numpy(np.ascontiguousarray(boxes, np.float32)),
            "labels": torch.from_numpy(labels),
            "image_id": int(sample["img_id"]),
        }


def collate_detection(samples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """StreamingCOCO samples as one batch: ``image`` B × 3 × S × S (first, so trainers count
    samples by its rows), ``boxes`` B × K × 4 and ``labels`` B × K padded with zeros to the
    batch's largest K (0 when no image has a box), ``box_mask`` B × K (True: a real box) and
    ``image_id`` B."""
    if not samples:
        raise ValueError("collate_detection needs at least one sample.")
    count = len(samples)
    most = max(len(sample["labels"]) for sample in samples)
    boxes = torch.zeros(count, most, 4, dtype=torch.float32)
    labels = torch.zeros(count, most, dtype=torch.int64)
    mask = torch.zeros(count, most, dtype=torch.bool)
    for i, sample in enumerate(samples):
        k = len(sample["labels"])
        boxes[i, :k] = sample["boxes"]
        labels[i, :k] = sample["labels"]
        mask[i, :k] = True
    return {
        "image": torch.stack([sample["image"] for sample in samples]),
        "boxes": boxes,
        "labels": labels,
        "box_mask": mask,
        "image_id": torch.tensor([int(sample["image_id"]) for sample in samples]),
    }
