"""Killed and resumed Lightning runs train on exactly the batches an uninterrupted run trains on.

Each run is a real ``Trainer.fit`` in a subprocess (CPU, no mocks) that SIGKILLs itself right
after the checkpoint of a chosen step is on disk and is resumed from ``last.ckpt``; every
training batch's sample ids are fsynced to a file before the step ends. The record of all runs
together must be the uninterrupted sequence: same samples, same order, nothing replayed, nothing
skipped, with 0, 1 or 2 DataLoader workers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integrations.lightning.helpers import BATCH, train, train_with_kills, trained

STEPS = 26  # global batches per epoch


def config(data: str, out: Path, **extra: Any) -> dict[str, Any]:
    return {"data": data, "out": str(out), "ckpt_dir": str(out / "ckpt"), "batch": BATCH, **extra}


def ids(out: Path) -> list[list[int]]:
    return [record["ids"] for record in trained(out)]


@pytest.fixture(scope="module")
def reference(data: str, order: list[list[list[int]]], tmp_path_factory: pytest.TempPathFactory):
    """An uninterrupted 2-epoch run (OneCycleLR sized by estimated_stepping_batches)."""
    out = tmp_path_factory.mktemp("reference")
    train(config(data, out, estimated=True))
    records = trained(out)
    assert [r["ids"] for r in records] == order[0] + order[1], "uninterrupted run = plan order"
    assert [(r["epoch"], r["batch_idx"]) for r in records] == [
        (e, b) for e in range(2) for b in range(STEPS)
    ]
    return records


@pytest.mark.slow
def test_killed_twice_same_batches_and_losses_as_uninterrupted(
    data: str, out: Path, reference: list[dict[str, Any]]
) -> None:
    """Killed mid-epoch 0 and at the last step of epoch 0; configure_optimizers reads
    trainer.estimated_stepping_batches, so the train loader exists before the restore
    (Lightning #20550). Same samples, order, epochs and losses, step for step."""
    run = config(data, out, estimated=True)
    train_with_kills(run, [{"kill_at_steps": [10]}, {"kill_at_steps": [STEPS]}])
    records = trained(out)
    assert [r["ids"] for r in records] == [r["ids"] for r in reference]
    assert [(r["epoch"], r["batch_idx"], r["step"]) for r in records] == [
        (r["epoch"], r["batch_idx"], r["step"]) for r in reference
    ]
    assert [r["loss"] for r in records] == [r["loss"] for r in reference]


@pytest.mark.slow
def test_workers_and_lightning_restoring_the_loader(
    data: str, out: Path, order: list[list[list[int]]]
) -> None:
    """2 workers; the loader is built after the restore, so Lightning's fit loop hands it its
    state. Killed in epoch 0, resumed from an explicit checkpoint path, killed in epoch 1."""
    run = config(data, out, workers=2)
    explicit = str(out / "ckpt" / "epoch=0-step=7.ckpt")
    train_with_kills(run, [{"kill_at_steps": [7]}, {"kill_at_steps": [30], "resume": explicit}])
    assert ids(out) == order[0] + order[1]


@pytest.mark.slow
def test_plain_dataloader_with_callback(data: str, out: Path, order: list[list[list[int]]]) -> None:
    """A torch DataLoader (2 workers) over a StreamingDataset plus StreamingResumeCallback,
    loader built before the restore; killed mid-epoch and at the end of epoch 0."""
    run = config(data, out, mode="plain", workers=2, estimated=True)
    train_with_kills(run, [{"kill_at_steps": [12]}, {"kill_at_steps": [STEPS]}])
    assert ids(out) == order[0] + order[1]


@pytest.mark.slow
@pytest.mark.parametrize("estimated", [False, True], ids=["restored-by-lightning", "20550"])
def test_streaming_dataloader_from_the_module(
    data: str, out: Path, order: list[list[list[int]]], estimated: bool
) -> None:
    """A StreamingDataLoader returned by LightningModule.train_dataloader. With the loader built
    before the restore (#20550) Lightning never hands it its state; the callback does."""
    run = config(data, out, mode="loader", estimated=estimated, callback=estimated)
    train_with_kills(run, [{"kill_at_steps": [12]}])
    assert ids(out) == order[0] + order[1]


@pytest.mark.slow
def test_accumulation_and_mid_epoch_validation(
    data: str, out: Path, order: list[list[list[int]]]
) -> None:
    """accumulate_grad_batches=2, validation twice per epoch (fractional val_check_interval
    needs a sized loader), a checkpoint every 3 optimizer steps; killed at step 9 (batch 18)."""
    run = config(
        data, out, workers=1, accumulate=2, val=True, val_check_interval=0.5, every_n_steps=3
    )
    train_with_kills(run, [{"kill_at_steps": [9]}])
    assert ids(out) == order[0] + order[1]


@pytest.mark.slow
def test_limit_train_batches_and_max_steps(
    data: str, out: Path, order: list[list[list[int]]]
) -> None:
    """Epochs of 10 batches (limit_train_batches), 25 steps (max_steps); killed at the last
    batch of epochs 0 and 1: each resume starts the next epoch at its first batch."""
    run = config(data, out, workers=2, limit_train_batches=10, max_steps=25, max_epochs=-1)
    train_with_kills(run, [{"kill_at_steps": [10]}, {"kill_at_steps": [20]}])
    assert ids(out) == order[0][:10] + order[1][:10] + order[2][:5]


@pytest.mark.slow
def test_checkpoints_at_epoch_end_start_the_next_epoch(
    data: str, out: Path, order: list[list[list[int]]]
) -> None:
    """ModelCheckpoint(every_n_epochs=1), killed after epochs 0 and 1 ended: the resumed runs
    start epochs 1 and 2 at their first batch, nothing replayed."""
    run = config(data, out, every_n_steps=0, every_n_epochs=1, max_epochs=3)
    train_with_kills(run, [{"kill_at_epoch_end": [0]}, {"kill_at_epoch_end": [1]}])
    records = trained(out)
    assert [r["ids"] for r in records] == order[0] + order[1] + order[2]
    assert [r["epoch"] for r in records] == [e for e in range(3) for _ in range(STEPS)]
