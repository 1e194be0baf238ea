"""Short Trainer runs in the test process (CPU, a few steps): checkpoints that cannot apply fail
with both sides named, no checkpoint starts at the start, and the DataModule also serves
``trainer.test`` / ``trainer.predict``. The global state Lightning touches (seed variables,
deterministic algorithms) is restored after each test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch

from streaming_lightning.errors import ConfigError
from streaming_lightning.integrations.lightning import StreamingDataModule
from tests.integrations.lightning.helpers import BATCH, trained, write_dataset
from tests.integrations.lightning.train_run import run


@pytest.fixture(autouse=True)
def restore_globals() -> Iterator[None]:
    environ = dict(os.environ)
    deterministic = torch.are_deterministic_algorithms_enabled()
    yield
    os.environ.clear()
    os.environ.update(environ)
    torch.use_deterministic_algorithms(deterministic)


@pytest.fixture(scope="module")
def other_data(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_dataset(tmp_path_factory.mktemp("other") / "ds", samples=150, first_id=1000)


def config(data: str, out: Path, **extra: Any) -> dict[str, Any]:
    return {
        "data": data,
        "out": str(out),
        "ckpt_dir": str(out / "ckpt"),
        "batch": BATCH,
        "max_steps": 3,
        "deterministic": False,
        **extra,
    }


@pytest.fixture(scope="module")
def checkpoints(data: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Per mode, a checkpoint taken after 3 steps of epoch 0 (batch 8, one process)."""
    paths = {}
    for mode in ("datamodule", "plain"):
        out = tmp_path_factory.mktemp(f"three-steps-{mode}")
        run(config(data, out, mode=mode))
        paths[mode] = str(out / "ckpt" / "last.ckpt")
    return paths


@pytest.mark.parametrize("mode", ["datamodule", "plain"])
def test_checkpoint_of_another_dataset(
    data: str, other_data: str, checkpoints: dict[str, str], tmp_path: Path, mode: str
) -> None:
    resume = checkpoints[mode]
    with pytest.raises(ConfigError) as error:
        run(config(other_data, tmp_path, mode=mode, resume=resume, max_steps=6))
    message = str(error.value)
    assert "203 samples" in message and "150 samples" in message, message
    assert "different dataset" in message


@pytest.mark.parametrize("mode", ["datamodule", "plain"])
def test_checkpoint_of_another_global_batch(
    data: str, checkpoints: dict[str, str], tmp_path: Path, mode: str
) -> None:
    resume = checkpoints[mode]
    with pytest.raises(ConfigError) as error:
        run(config(data, tmp_path, mode=mode, batch=4, resume=resume, max_steps=6))
    message = str(error.value)
    assert "global batch size of 8" in message and "is 4" in message, message


def test_no_checkpoint_starts_at_the_beginning(
    data: str, tmp_path: Path, order: list[list[list[int]]]
) -> None:
    """ckpt_path='last' with nothing saved yet: Lightning starts fresh, so does the data."""
    run(config(data, tmp_path, resume="last"))
    assert [record["ids"] for record in trained(tmp_path)] == order[0][:3]


@pytest.mark.parametrize("mode", ["datamodule", "plain"])
def test_resume_in_process_continues(
    data: str, checkpoints: dict[str, str], tmp_path: Path, order: list[list[list[int]]], mode: str
) -> None:
    """The same checkpoint applies cleanly to the same data and batch: steps 4-6 follow."""
    run(config(data, tmp_path, mode=mode, resume=checkpoints[mode], max_steps=6))
    assert [record["ids"] for record in trained(tmp_path)] == order[0][3:6]


def test_callback_warns_on_a_checkpoint_without_position(
    data: str, checkpoints: dict[str, str], tmp_path: Path
) -> None:
    """A checkpoint saved without the callback holds no position for a plain loader: say so."""
    saved = torch.load(checkpoints["plain"], weights_only=False)
    del saved["streaming_lightning"]
    stripped = tmp_path / "stripped.ckpt"
    torch.save(saved, stripped)
    with pytest.warns(UserWarning, match="no streaming data position"):
        run(config(data, tmp_path, mode="plain", resume=str(stripped), max_steps=4))


def test_datamodule_serves_test_and_predict(data: str) -> None:
    """Lightning rebuilds predict loaders (to track indices): the StreamingDataLoader survives
    the re-instantiation, and every sample of the dataset is predicted — once: test and
    predict splits are not padded to whole batches (the last one is short)."""

    class Echo(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(1, 1)

        def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
            return batch["id"]

        def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
            self.log("samples", float(len(batch["id"])), reduce_fx="sum")

    module = StreamingDataModule(test={"local": data}, predict={"local": data}, batch_size=BATCH)
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False)
    predicted = trainer.predict(Echo(), datamodule=module)
    assert predicted is not None
    ids = torch.cat(predicted).tolist()  # type: ignore[arg-type]
    assert sorted(ids) == list(range(203))
    assert [len(batch) for batch in predicted] == [BATCH] * 25 + [3]  # type: ignore[arg-type]
    assert trainer.test(Echo(), datamodule=module) == [{"samples": 203.0}]
    assert len(module.test_dataloader()) == 26
