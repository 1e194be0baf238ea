"""A tiny video-text contrastive model (CLIP's recipe at CPU-demo size): a small conv net
encodes each frame, frames are mean-pooled over time; byte embeddings with a byte-trigram
convolution are mean-pooled over the caption; both are projected into one space where a
learned temperature scales their cosine similarities.

Mean pooling over time is the simplest temporal model that still sees every frame; it is
what CLIP4Clip's "meanP" baseline does, and strong enough to align clips with captions.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional

from recipes.webvid.dataset import VOCAB_SIZE


class FrameEncoder(nn.Module):
    """[B, K, 3, S, S] frames → [B, C] clip features: three stride-2 conv stages (widths w, 2w,
    4w), spatial mean per frame, then the mean over the K frames."""

    def __init__(self, width: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        inputs = 3
        for stage in range(3):
            outputs = width * 2**stage
            layers += [
                nn.Conv2d(inputs, outputs, 3, 2, 1, bias=False),
                nn.BatchNorm2d(outputs),
                nn.ReLU(),
            ]
            inputs = outputs
        self.layers = nn.Sequential(*layers)
        self.channels = inputs

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        batch, count = frames.shape[:2]
        per_frame = self.layers(frames.flatten(0, 1)).mean(dim=(2, 3))
        return per_frame.view(batch, count, -1).mean(dim=1)


class TextEncoder(nn.Module):
    """[B, L] byte tokens (0 = padding) → [B, C]: embeddings plus a byte-trigram convolution
    (a bag of bytes alone cannot tell "dog bites man" from anagrams), mean over real tokens."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB_SIZE, width, padding_idx=0)
        self.trigrams = nn.Conv1d(width, width, 3, padding=1)
        self.channels = width

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        mask = (tokens != 0).unsqueeze(-1).to(self.embed.weight.dtype)
        x = self.embed(tokens)
        x = x + torch.relu(self.trigrams(x.transpose(1, 2))).transpose(1, 2)
        return (x * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)


class VideoTextModel(nn.Module):
    def __init__(
        self, embed_dim: int = 64, width: int = 16, text_width: int = 64, temperature: float = 0.07
    ) -> None:
        super().__init__()
        self.video = FrameEncoder(width)
        self.text = TextEncoder(text_width)
        self.video_projection = nn.Linear(self.video.channels, embed_dim)
        self.text_projection = nn.Linear(self.text.channels, embed_dim)
        # CLIP's parametrisation: the log of the inverse temperature, capped at 100.
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))

    def embed(
        self, frames: torch.Tensor, tokens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit-length video and caption embeddings, [B, embed_dim] each."""
        video = functional.normalize(self.video_projection(self.video(frames)), dim=-1)
        text = functional.normalize(self.text_projection(self.text(tokens)), dim=-1)
        return video, text

    def forward(self, frames: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """[B, B] logits: row i scores clip i against every caption of the batch."""
        video, text = self.embed(frames, tokens)
        return self.logit_scale.clamp(max=math.log(100.0)).exp() * video @ text.T
