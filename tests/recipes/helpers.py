"""Shared by the recipe tests: run ``train.py`` as users do, and check a run checkpoints and
that rerunning the same command resumes from its last checkpoint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]


def run_train(yaml: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    """``python train.py <yaml> <args>`` from the repository root."""
    return subprocess.run(
        [sys.executable, "train.py", yaml, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def train_args(remote: str | Path, work: Path, batch_size: int) -> list[str]:
    """The overrides every recipe's train.py test shares: a CPU run with a local cache and
    checkpoints every 2 steps under ``work``."""
    return [
        f"data.remote={remote}",
        f"data.local={work / 'cache'}",
        f"data.batch_size={batch_size}",
        "data.num_workers=1",
        f"checkpoint.dir={work / 'ckpt'}",
        "checkpoint.every_n_steps=2",
        "trainer.progress_bar=false",
        "trainer.accelerator=cpu",
    ]


def check_trains_and_resumes(
    yaml: str, args: list[str], work: Path, first: int = 4, second: int = 6
) -> None:
    """Train ``first`` steps (a checkpoint must exist), then rerun to ``second``: the rerun
    must restore the checkpoint and continue, not start over."""
    done = run_train(yaml, [*args, f"trainer.max_steps={first}"])
    assert done.returncode == 0, done.stderr[-3000:]
    last = work / "ckpt" / "last.ckpt"
    assert torch.load(last, weights_only=False)["global_step"] == first
    again = run_train(yaml, [*args, f"trainer.max_steps={second}"])
    assert again.returncode == 0, again.stderr[-3000:]
    assert torch.load(last, weights_only=False)["global_step"] == second
    assert "Restoring states from the checkpoint" in again.stderr + again.stdout
