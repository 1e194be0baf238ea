"""``python train.py yamls/cifar10.yaml trainer.kind=composer``: trains with real Composer,
checkpoints, and a rerun of the same command autoresumes from the last checkpoint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from recipes.cifar10.convert import convert
from recipes.cifar10.fixtures import write_raw
from recipes.common.convert import WriteOptions
from tests.conftest import require_peer

ROOT = Path(__file__).resolve().parents[3]


def _train(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "train.py", "yamls/cifar10.yaml", "trainer.kind=composer", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
    )


def _batches_done(checkpoint: Path) -> int:
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    return int(state["state"]["timestamp"]["Timestamp"]["batch"])


def test_composer_trainer_checkpoints_and_autoresumes(tmp_path: Path) -> None:
    require_peer("composer")
    raw = write_raw(str(tmp_path / "raw"), per_batch=40, test=20)
    convert(raw, WriteOptions(out=str(tmp_path / "mds"), progress=False))
    common = [
        f"data.remote={tmp_path / 'mds'}",
        f"data.local={tmp_path / 'cache'}",
        "data.batch_size=16",
        "data.num_workers=1",
        "data.eval_split=null",
        f"checkpoint.dir={tmp_path / 'ckpt'}",
        "checkpoint.every_n_steps=2",
        "trainer.progress_bar=false",
        "trainer.accelerator=cpu",
        "model.width=8",
        "run_name=composer-test",
    ]
    first = _train([*common, "trainer.max_steps=4"])
    assert first.returncode == 0, first.stderr[-4000:]
    latest = tmp_path / "ckpt" / "composer-test" / "latest-rank0.pt"
    assert latest.exists(), sorted(p.name for p in (tmp_path / "ckpt").rglob("*"))
    assert _batches_done(latest) == 4
    second = _train([*common, "trainer.max_steps=6"])
    assert second.returncode == 0, second.stderr[-4000:]
    assert _batches_done(latest) == 6
    # The rerun continued after batch 4 (a fresh start would train batches 1-6 again).
    logged = second.stdout + second.stderr
    assert "[batch=5/6]" in logged and "[batch=1/6]" not in logged, logged[-2000:]
