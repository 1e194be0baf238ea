"""The symmetric InfoNCE loss of CLIP, shared by the image-text and video-text recipes.

Sample i's positive is the other modality of sample i; every other sample of the device batch
is a negative (no all-gather across ranks: each device contrasts its own batch).
"""

from __future__ import annotations

import torch
from torch.nn import functional


def symmetric_infonce(logits: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``logits[i, j]``: similarity of sample i's first modality to sample j's second. Returns
    the mean of both directions' cross entropy and the first → second top-1 accuracy."""
    targets = torch.arange(len(logits), device=logits.device)
    value = (
        functional.cross_entropy(logits, targets) + functional.cross_entropy(logits.T, targets)
    ) / 2
    accuracy = (logits.argmax(dim=1) == targets).float().mean()
    return value, {"accuracy": accuracy}
