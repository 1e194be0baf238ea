"""The optimizer and learning-rate schedule from ``optimizer:``, shared by both trainers."""

from __future__ import annotations

import math
from typing import Any

import torch
from omegaconf import DictConfig


def build_optimizer(
    parameters: Any, config: DictConfig, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """The optimizer and a per-step schedule: linear warmup, then cosine decay to 0."""
    opt = config.optimizer
    if opt.name == "sgd":
        optimizer: torch.optim.Optimizer = torch.optim.SGD(
            parameters, lr=opt.lr, momentum=opt.momentum, weight_decay=opt.weight_decay
        )
    else:
        optimizer = torch.optim.AdamW(parameters, lr=opt.lr, weight_decay=opt.weight_decay)
    warmup, total = int(opt.warmup_steps), max(1, int(total_steps))

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if not warmup:
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1 + math.cos(math.pi * progress))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
