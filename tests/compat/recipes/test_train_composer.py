"""``python train.py yamls/cifar10.yaml trainer.kind=composer``: trains with real Composer,
checkpoints, and a rerun of the same command autoresumes from the last checkpoint."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from recipes.cifar10.convert import convert
from recipes.cifar10.fixtures import write_raw
from recipes.common.convert import WriteOptions
from recipes.common.text_convert import TextOptions
from tests.conftest import require_peer

ROOT = Path(__file__).resolve().parents[3]


def _train(args: list[str], yaml: str = "yamls/cifar10.yaml") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "train.py", yaml, "trainer.kind=composer", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
    )


def _timestamp(checkpoint: Path) -> dict[str, int]:
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    return dict(state["state"]["timestamp"]["Timestamp"])


def _batches_done(checkpoint: Path) -> int:
    return int(_timestamp(checkpoint)["batch"])


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


def test_composer_counts_tokens_for_c4(tmp_path: Path) -> None:
    """A language recipe under Composer: its timestamp counts tokens (token_column)."""
    require_peer("composer")
    from recipes.c4.convert import convert as convert_c4
    from recipes.c4.fixtures import write_raw as write_c4

    raw = write_c4(str(tmp_path / "raw"), files=2, docs_per_file=40)
    mds = WriteOptions(out=str(tmp_path / "mds"), progress=False)
    convert_c4(raw, mds, TextOptions("tokens", seq_len=32))
    args = [
        f"data.remote={tmp_path / 'mds'}",
        f"data.local={tmp_path / 'cache'}",
        "data.batch_size=4",
        "data.num_workers=0",
        "data.eval_split=null",
        f"checkpoint.dir={tmp_path / 'ckpt'}",
        "checkpoint.every_n_steps=2",
        "trainer.progress_bar=false",
        "trainer.accelerator=cpu",
        "model.seq_len=32",
        "model.d_model=32",
        "model.n_layers=1",
        "run_name=c4-composer",
        "trainer.max_steps=3",
    ]
    done = _train(args, "yamls/c4.yaml")
    assert done.returncode == 0, done.stderr[-4000:]
    timestamp = _timestamp(tmp_path / "ckpt" / "c4-composer" / "latest-rank0.pt")
    assert timestamp["batch"] == 3 and timestamp["sample"] == 12
    assert timestamp["token"] == 12 * 32  # every input_ids element of every batch


def test_composer_trains_coco_with_the_recipes_collate(tmp_path: Path) -> None:
    """COCO's samples do not stack: Composer's loader must batch them with the recipe's
    collate function, and count samples by the image rows."""
    require_peer("composer")
    from recipes.coco.convert import convert as convert_coco
    from recipes.coco.fixtures import write_raw as write_coco

    raw = write_coco(str(tmp_path / "raw"), train=12, val=4)
    convert_coco(raw, WriteOptions(out=str(tmp_path / "mds"), progress=False))
    args = [
        f"data.remote={tmp_path / 'mds'}",
        f"data.local={tmp_path / 'cache'}",
        "data.batch_size=4",
        "data.num_workers=1",
        "data.eval_split=null",
        "data.options.image_size=64",
        f"checkpoint.dir={tmp_path / 'ckpt'}",
        "checkpoint.every_n_steps=2",
        "trainer.progress_bar=false",
        "trainer.accelerator=cpu",
        "trainer.precision=32-true",
        "model.width=8",
        "run_name=coco-composer",
        "trainer.max_steps=2",
    ]
    done = _train(args, "yamls/coco.yaml")
    assert done.returncode == 0, done.stderr[-4000:]
    timestamp = _timestamp(tmp_path / "ckpt" / "coco-composer" / "latest-rank0.pt")
    assert timestamp["batch"] == 2 and timestamp["sample"] == 8


def test_composer_evaluates_the_recipes_loss_and_metrics(tmp_path: Path) -> None:
    """With ``data.eval_split`` set, Composer logs the eval loss and the recipe's metrics
    (Composer evaluates only metrics the model declares, so without them it ran the eval
    forward passes and logged nothing)."""
    require_peer("composer")
    raw = write_raw(str(tmp_path / "raw"), per_batch=16, test=20)  # 80 train, 20 test samples
    convert(raw, WriteOptions(out=str(tmp_path / "mds"), progress=False))
    args = [
        f"data.remote={tmp_path / 'mds'}",
        f"data.local={tmp_path / 'cache'}",
        "data.batch_size=16",
        "data.num_workers=1",
        "data.eval_split=test",
        f"checkpoint.dir={tmp_path / 'ckpt'}",
        "trainer.progress_bar=false",
        "trainer.accelerator=cpu",
        "trainer.max_epochs=1",
        "model.width=8",
        "run_name=composer-eval",
    ]
    done = _train(args)
    assert done.returncode == 0, done.stderr[-4000:]
    logged = done.stdout + done.stderr
    values = {}
    for name in ("loss", "accuracy"):
        found = re.findall(rf"metrics/eval/{name}: ([0-9.e+-]+)", logged)
        assert found, (name, logged[-3000:])
        values[name] = float(found[-1])
    assert values["loss"] > 0 and 0 <= values["accuracy"] <= 1
    # Over the 20 test samples (batches of 16 and 4, none repeated to fill a batch), each
    # counted once: a whole number of them is right.
    assert abs(values["accuracy"] * 20 - round(values["accuracy"] * 20)) < 1e-3, values
    assert len(re.findall(r"metrics/eval/accuracy", logged)) == 1  # one evaluation: 1 epoch


def test_composer_eval_metrics_weigh_each_batch_by_its_samples() -> None:
    require_peer("composer")
    from recipes.common.composer_run import RecipeModel
    from recipes.common.config import load_config

    config, task = load_config(str(ROOT / "yamls" / "cifar10.yaml"), ["data.remote=/data"])
    model = RecipeModel(task, config)
    metrics = model.get_metrics(is_train=False)
    assert set(metrics) == {"loss", "accuracy"} and model.get_metrics(is_train=True) == {}
    for rows, accuracy in ((16, 1.0), (4, 0.0)):
        batch = (torch.zeros(rows, 3, 32, 32), torch.zeros(rows, dtype=torch.long))
        outputs = (torch.tensor(2.0), {"accuracy": torch.tensor(accuracy)})
        for metric in metrics.values():
            model.update_metric(batch, outputs, metric)
    assert float(metrics["accuracy"].compute()) == pytest.approx(16 / 20)  # not (1 + 0) / 2
    assert float(metrics["loss"].compute()) == 2.0
