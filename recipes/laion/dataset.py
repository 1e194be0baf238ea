"""StreamingLAION: LAION MDS samples as {"image", "tokens"} pairs for contrastive training.

The image is decoded from the stored JPEG bytes with Pillow's draft mode — libjpeg scales by
1/2, 1/4 or 1/8 while decoding, so a 512-pixel photo headed for a 64-pixel crop costs a
fraction of a full decode — then one resample takes the crop straight to ``image_size``
(short side resized, then cropped: centred, or with augmentation a random window zoomed in
by up to 25%). No horizontal flip: captions say "left" and "right". The window is drawn from a
generator seeded by (shuffle_seed, epoch, sample index), so a resumed run, with any number of
workers or ranks, augments every sample exactly as the uninterrupted run did.

Captions become byte-level tokens — UTF-8 bytes + 1, 0 for padding, truncated to
``max_caption_len`` — which need no tokenizer file and cover every language the crawl has.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import torch

from streaming_lightning import StreamingDataset
from streaming_lightning.errors import ConfigError

#: CLIP's normalisation (OpenAI's statistics of its training images).
MEAN = np.array([0.48145466, 0.4578275, 0.40821073], np.float32)
STD = np.array([0.26862954, 0.26130258, 0.27577711], np.float32)
#: Augmentation crops a window of the short side divided by up to this.
MAX_ZOOM = 1.25
#: Token ids: 0 is padding, byte b is b + 1.
VOCAB = 257


def byte_tokens(text: str, length: int) -> np.ndarray:
    """``length`` int64 tokens: the caption's UTF-8 bytes + 1, truncated, padded with 0."""
    data = np.frombuffer(text.encode("utf-8")[:length], np.uint8)
    tokens = np.zeros(length, np.int64)
    tokens[: len(data)] = data.astype(np.int64) + 1
    return tokens


def crop_box(
    width: int, height: int, rng: np.random.Generator | None
) -> tuple[float, float, float, float]:
    """The square window (left, top, right, bottom) to resize: the centred square of the short
    side, or — with ``rng`` — a random square 1/MAX_ZOOM to 1 of it, anywhere in the image."""
    short = min(width, height)
    if rng is None:
        side, left, top = float(short), (width - short) / 2, (height - short) / 2
    else:
        side = short / rng.uniform(1.0, MAX_ZOOM)
        left, top = rng.uniform(0, width - side), rng.uniform(0, height - side)
    return left, top, left + side, top + side


def decode_image(data: bytes, size: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """``size`` × ``size`` × 3 uint8 pixels of the stored image (see the module docstring)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        # Draft keeps both sides >= the request, so the crop still has >= size pixels a side.
        image.draft("RGB", (math.ceil(size * MAX_ZOOM),) * 2)
        rgb = image.convert("RGB")
    box = crop_box(rgb.width, rgb.height, rng)
    return np.asarray(rgb.resize((size, size), Image.Resampling.BICUBIC, box=box))


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """HWC uint8 → CHW float32, normalised by CLIP's channel statistics."""
    scaled = (image.astype(np.float32) / 255.0 - MEAN) / STD
    return torch.from_numpy(np.ascontiguousarray(scaled.transpose(2, 0, 1)))


class StreamingLAION(StreamingDataset):
    """LAION from MDS shards (``jpg``, ``caption`` …) as ``{"image": 3×S×S float32,
    "tokens": int64 [max_caption_len]}``.

    Takes StreamingDataset's arguments plus ``image_size`` (S, default 64),
    ``max_caption_len`` (default 32 tokens) and ``augment`` (default: on for ``train``).
    """

    def __init__(
        self,
        *,
        image_size: int = 64,
        max_caption_len: int = 32,
        augment: bool | None = None,
        **kwargs: Any,
    ) -> None:
        if int(image_size) < 1 or int(max_caption_len) < 1:
            raise ConfigError(
                f"StreamingLAION: image_size ({image_size}) and max_caption_len "
                f"({max_caption_len}) must be >= 1."
            )
        super().__init__(**kwargs)
        self.image_size = int(image_size)
        self.max_caption_len = int(max_caption_len)
        self.augment = kwargs.get("split") == "train" if augment is None else bool(augment)

    def get_item(self, index: int) -> dict[str, torch.Tensor]:
        sample = super().get_item(index)
        rng = (
            np.random.default_rng((self.shuffle_seed, self.epoch, index)) if self.augment else None
        )
        image = decode_image(sample["jpg"], self.image_size, rng)
        return {
            "image": to_tensor(image),
            "tokens": torch.from_numpy(byte_tokens(sample["caption"], self.max_caption_len)),
        }
