"""Killed and resumed Composer runs train on exactly the batches an uninterrupted run trains on.

Each run is a real Composer 0.32 ``Trainer.fit`` in a subprocess (CPU, no mocks) over
``build_dataspec`` (shuffle=True) that SIGKILLs itself right after a checkpoint is written and
is resumed with ``autoresume=True`` or ``load_path``; every training batch's sample ids are
fsynced before its checkpoint. The record of all runs together must be the uninterrupted
sequence: same samples, same order, nothing replayed, nothing skipped — with 0 or 2 DataLoader
workers, across an epoch end, and with 2 ranks (gloo) splitting every global batch.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.compat.composer.helpers import (
    BATCH,
    dataset_order,
    expect,
    global_batches,
    launch,
    log_text,
    train,
    trained,
    write_dataset,
)
from tests.conftest import require_peer

require_peer("composer")

STEPS = 16  # global batches per epoch
KILLED = -9


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_dataset(tmp_path_factory.mktemp("composer-data") / "ds")


@pytest.fixture(scope="module")
def order(data: str) -> list[list[int]]:
    """The global batches of epochs 0 and 1 as the dataset deals them."""
    return dataset_order(data, 2)


def config(data: str, out: Path, **extra: Any) -> dict[str, Any]:
    return {"data": data, "out": str(out), "batch": BATCH, **extra}


def ids(out: Path) -> list[list[int]]:
    return [record["ids"] for record in trained(out)]


@pytest.fixture(scope="module")
def reference(data: str, order: list[list[int]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted 2-epoch run, checkpointing every 4 batches."""
    out = tmp_path_factory.mktemp("reference")
    expect(train(config(data, out)), 0, out)
    assert ids(out) == order, "uninterrupted run = the dataset's plan order"
    assert [r["epoch"] for r in trained(out)] == [0] * STEPS + [1] * STEPS
    return out


def test_killed_three_times_autoresume(data: str, tmp_path: Path, reference: Path) -> None:
    """Killed after the checkpoints of batch 8 (mid epoch 0), batch 16 (the last of epoch 0,
    before the epoch ended) and batch 20 (mid epoch 1), resumed by autoresume each time: the
    uninterrupted run's batches, epoch for epoch."""
    out = tmp_path / "run"
    run = config(data, out, autoresume=True)
    for kill in (8, 16, 20):
        expect(train({**run, "kill_at_batch": kill}), KILLED, out)
        assert len(trained(out)) == kill
    expect(train(run), 0, out)
    assert ids(out) == ids(reference)
    assert [r["epoch"] for r in trained(out)] == [r["epoch"] for r in trained(reference)]


@pytest.mark.parametrize("mode", ["dataspec", "plain"])
def test_two_workers_load_path(data: str, tmp_path: Path, reference: Path, mode: str) -> None:
    """2 DataLoader workers, a checkpoint every 3 batches, killed after batch 9, resumed from
    the checkpoint file by load_path; with build_dataspec, and with a plain torch DataLoader
    over a StreamingDataset (Composer calls the dataset's state_dict itself)."""
    out = tmp_path / "run"
    run = config(data, out, workers=2, save_interval="3ba", mode=mode)
    expect(train({**run, "kill_at_batch": 9}), KILLED, out)
    assert len(trained(out)) == 9
    expect(train({**run, "load_path": str(out / "ckpt" / "ep0-ba9-rank0.pt")}), 0, out)
    assert ids(out) == ids(reference)


@pytest.mark.parametrize(
    "loader", [{"monitor": False}, {"mode": "plain"}], ids=["dataspec", "plain-loader+monitor"]
)
def test_checkpoint_at_epoch_end(
    data: str, tmp_path: Path, reference: Path, loader: dict[str, Any]
) -> None:
    """save_interval='1ep' (Composer's default): the checkpoint is written after epoch 0 ended,
    where Composer counts 0 samples into epoch 1; killed as epoch 1 starts, the resumed run
    trains epoch 1, not epoch 0 again. build_dataspec's loader needs no callback for this; a
    plain DataLoader over a StreamingDataset gets it from StreamingMonitor."""
    out = tmp_path / "run"
    run = config(data, out, workers=1, save_interval="1ep", autoresume=True, **loader)
    expect(train({**run, "kill_at_epoch_start": 1}), KILLED, out)
    assert len(trained(out)) == STEPS
    expect(train(run), 0, out)
    assert ids(out) == ids(reference)


def test_two_ranks_killed_and_resumed(data: str, tmp_path: Path, order: list[list[int]]) -> None:
    """2 ranks (gloo, torch.distributed environment) with per-device batch 2: killed after the
    checkpoint of step 6, autoresumed on 2 ranks, and (a copy) on one process with batch 4;
    each step's global batch (rank 0's then rank 1's samples) is the single-process
    sequence."""
    out = tmp_path / "run"
    run = config(data, out, batch=BATCH // 2, save_interval="3ba", autoresume=True)
    expect(train({**run, "kill_at_batch": 6}, ranks=2), KILLED, out)
    assert len(global_batches(out, 2)) == 6

    # The same checkpoint continued by one process with per-device batch 4 (global batch 4).
    single = tmp_path / "single"
    shutil.copytree(out, single)
    expect(train({**run, "out": str(single), "batch": BATCH}), 0, single)

    expect(train(run, ranks=2), 0, out)
    assert global_batches(out, 2) == order

    rank0, rank1 = trained(single, 0), trained(single, 1)
    assert len(rank1) == 6  # rank 1 only trained before the kill
    before = [a["ids"] + b["ids"] for a, b in zip(rank0, rank1)]
    after = [record["ids"] for record in rank0[6:]]
    assert before + after == order


def test_composer_launcher(data: str, tmp_path: Path, order: list[list[int]]) -> None:
    """``composer -n 2`` (Composer's launcher, offline): 2 ranks with per-device batch 2 split
    each global batch of the single-process sequence."""
    out = tmp_path / "run"
    code = launch(config(data, out, batch=BATCH // 2, max_duration="6ba"), nproc=2)
    errors = "".join(p.read_text()[-3000:] for p in sorted(out.glob("launch-err*.txt")))
    assert code == 0, errors
    assert global_batches(out, 2) == order[:6]


def test_resume_on_other_data_is_refused(tmp_path: Path, reference: Path) -> None:
    """A checkpoint resumed on a dataset with other samples fails before training, naming both
    datasets' fingerprints and the new dataset's location."""
    other = write_dataset(tmp_path / "other", samples=50)
    out = tmp_path / "run"
    run = config(other, out, load_path=str(reference / "ckpt" / "ep0-ba8-rank0.pt"))
    expect(train(run), 1, out)
    log = log_text(out)
    saved = _fingerprint(reference)
    assert "DatasetMismatchError" in log
    assert f"fingerprint {saved}" in log and other in log
    assert trained(out) == []


def test_resume_with_other_global_batch(
    data: str, tmp_path: Path, reference: Path, order: list[list[int]]
) -> None:
    """Per-device batch 2 on one process (global batch 2) resuming a global-batch-4 checkpoint
    (max_duration 2ep): StreamingMonitor stops the run at fit_start, naming both global batch
    sizes, unless allow_global_batch_change=True."""
    out = tmp_path / "run"
    shutil.copytree(reference / "ckpt", out / "ckpt")
    run = config(data, out, batch=2, load_path=str(out / "ckpt" / "ep0-ba8-rank0.pt"))
    expect(train(run), 1, out)
    log = log_text(out)
    assert "global batch size 4" in log and "global batch size is 2" in log
    assert trained(out) == []

    # Allowed: the rest of epoch 0 is re-dealt in batches of 2, nothing replayed or skipped;
    # epoch 1 is the dataset's epoch 1 in batches of 2.
    expect(train({**run, "allow_batch_change": True}), 0, out)
    records = trained(out)
    rest = [i for r in records if r["epoch"] == 0 for i in r["ids"]]
    assert rest == [i for batch in order[8:STEPS] for i in batch]
    in_twos = dataset_order(data, 2, batch=2)
    assert [r["ids"] for r in records if r["epoch"] == 1] == in_twos[len(in_twos) // 2 :]


def _fingerprint(reference: Path) -> str:
    import torch

    state = torch.load(
        reference / "ckpt" / "ep0-ba8-rank0.pt", map_location="cpu", weights_only=False
    )
    return str(state["state"]["dataset_state"]["train"]["fingerprint"])
