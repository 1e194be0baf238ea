"""A tiny CLIP (Radford et al. 2021) for CPU demos: a small conv image encoder and a byte-level
text encoder, both projected to one embedding space and compared by cosine similarity scaled
by a learned temperature. Defaults are ~130k parameters.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional

from streaming_lightning.errors import ConfigError


def _norm(channels: int) -> nn.Module:
    # GroupNorm, not BatchNorm: an image embeds the same whatever else is in its batch, so
    # in-batch contrastive scores (and eval numbers) do not depend on the batch.
    return nn.GroupNorm(min(8, channels), channels)


class ImageEncoder(nn.Module):
    """Three stride-2 conv stages (widths w, 2w, 4w), global average pool, linear projection."""

    def __init__(self, width: int, embed_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        inputs = 3
        for stage in range(3):
            outputs = width * 2**stage
            layers += [
                nn.Conv2d(inputs, outputs, 3, 2, 1, bias=False),
                _norm(outputs),
                nn.ReLU(),
                nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False),
                _norm(outputs),
                nn.ReLU(),
            ]
            inputs = outputs
        self.features = nn.Sequential(*layers)
        self.project = nn.Linear(inputs, embed_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.project(self.features(images).mean(dim=(2, 3)))


class TextEncoder(nn.Module):
    """Byte embeddings + learned positions, ``layers`` pre-norm transformer layers (0: a bag
    of bytes), mean over the non-padding tokens, linear projection."""

    def __init__(
        self, vocab: int, width: int, layers: int, heads: int, context_length: int, embed_dim: int
    ) -> None:
        super().__init__()
        self.context_length = context_length
        self.embed = nn.Embedding(vocab, width, padding_idx=0)
        self.position = nn.Parameter(torch.randn(context_length, width) * 0.01)
        self.layers = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(
                width, heads, 2 * width, dropout=0.0, batch_first=True, norm_first=True
            ),
            layers,
            enable_nested_tensor=False,
        )
        self.norm = nn.LayerNorm(width)
        self.project = nn.Linear(width, embed_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.shape[1] > self.context_length:
            raise ConfigError(
                f"Captions of {tokens.shape[1]} tokens exceed model.context_length "
                f"{self.context_length}: raise it or lower data.options.max_caption_len."
            )
        padding = tokens == 0
        padding[:, 0] = False  # an empty caption still attends to (and averages) one position
        x = self.embed(tokens) + self.position[: tokens.shape[1]]
        x = self.norm(self.layers(x, src_key_padding_mask=padding))
        keep = (~padding).unsqueeze(-1).to(x.dtype)
        return self.project((x * keep).sum(1) / keep.sum(1))


class CLIP(nn.Module):
    """``forward(images, tokens)`` → image-to-text logits (B × B): row i scores image i against
    every caption of the batch; the diagonal holds the true pairs."""

    def __init__(
        self,
        embed_dim: int = 64,
        width: int = 16,
        text_width: int = 64,
        text_layers: int = 1,
        heads: int = 4,
        vocab: int = 257,
        context_length: int = 32,
    ) -> None:
        super().__init__()
        self.image = ImageEncoder(width, embed_dim)
        self.text = TextEncoder(vocab, text_width, text_layers, heads, context_length, embed_dim)
        # CLIP's initial temperature 0.07, learned as a log scale.
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return functional.normalize(self.image(images), dim=-1)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        return functional.normalize(self.text(tokens), dim=-1)

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        scale = self.logit_scale.clamp(max=math.log(100)).exp()  # CLIP's cap: stable training
        return scale * self.encode_image(images) @ self.encode_text(tokens).T
