"""StreamingWebVid: WebVid MDS samples as (frames, caption tokens) pairs for contrastive
video-text training.

The shards keep each mp4 as crawled; frames are decoded here, in the DataLoader workers, so one
conversion serves any ``num_frames`` and ``frame_size``. Captions become byte-level tokens
(UTF-8 bytes + 1, 0 = padding): no tokenizer to download or version, every language works.

Training-time augmentation — a random temporal offset (the K frames shift together inside
their segments, see ``video.py``) and a horizontal flip half the time — is drawn from a
generator seeded by (shuffle_seed, epoch, sample index): a resumed run, with any number of
workers or ranks, augments every sample exactly as the uninterrupted run did.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from recipes.webvid.video import decode_frames
from streaming_lightning import StreamingDataset
from streaming_lightning.errors import ConfigError

#: CLIP's RGB statistics: web video frames look like web images.
MEAN = np.array([0.4815, 0.4578, 0.4082], np.float32)
STD = np.array([0.2686, 0.2613, 0.2758], np.float32)
#: Byte tokens 1..256 plus padding 0.
VOCAB_SIZE = 257


def tokenize(caption: str, length: int) -> np.ndarray:
    """The caption's UTF-8 bytes + 1, cut or zero-padded to ``length``, as int64."""
    data = np.frombuffer(caption.encode("utf-8")[:length], np.uint8)
    tokens = np.zeros(length, np.int64)
    tokens[: len(data)] = data.astype(np.int64) + 1
    return tokens


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """[K, S, S, 3] uint8 → [K, 3, S, S] float32, normalised by MEAN and STD."""
    scaled = (frames.astype(np.float32) / 255.0 - MEAN) / STD
    return torch.from_numpy(np.ascontiguousarray(scaled.transpose(0, 3, 1, 2)))


class StreamingWebVid(StreamingDataset):
    """WebVid from MDS shards (``video`` mp4 bytes, ``caption``, ...) as
    ``{"frames": [K, 3, S, S] float32, "tokens": [max_caption_len] int64}``.

    Takes StreamingDataset's arguments plus ``num_frames`` (K), ``frame_size`` (S),
    ``max_caption_len`` and ``augment`` (default: on for the ``train`` split).
    """

    def __init__(
        self,
        *,
        num_frames: int = 8,
        frame_size: int = 64,
        max_caption_len: int = 32,
        augment: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        for key, value in (
            ("num_frames", num_frames),
            ("frame_size", frame_size),
            ("max_caption_len", max_caption_len),
        ):
            if int(value) < 1:
                raise ConfigError(f"StreamingWebVid: {key} must be >= 1, got {value}.")
        self.num_frames = int(num_frames)
        self.frame_size = int(frame_size)
        self.max_caption_len = int(max_caption_len)
        self.augment = kwargs.get("split") == "train" if augment is None else bool(augment)

    def get_item(self, index: int) -> dict[str, torch.Tensor]:
        sample = super().get_item(index)
        offset, flip = 0.5, False
        if self.augment:
            rng = np.random.default_rng((self.shuffle_seed, self.epoch, index))
            offset, flip = float(rng.random()), bool(rng.random() < 0.5)
        frames = decode_frames(
            sample["video"],
            self.num_frames,
            self.frame_size,
            offset,
            name=f"WebVid sample {index} (videoid {sample['videoid']})",
        )
        if flip:
            frames = frames[:, :, ::-1]
        return {
            "frames": to_tensor(frames),
            "tokens": torch.from_numpy(tokenize(sample["caption"], self.max_caption_len)),
        }
