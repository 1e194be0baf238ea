"""DDP with real processes (gloo on CPU): two ranks killed mid-epoch resume on two ranks, or on
one rank with the per-device batch doubled (the same global batch), and the global sequence of
batches is the one a single process trains on. Ranks learn their place from the trainer; nobody
exports RANK/WORLD_SIZE."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.integrations.lightning.helpers import BATCH, global_batches, train, trained


def two_ranks(data: str, out: Path, strategy: str, workers: int) -> dict[str, Any]:
    """A train_run config for 2 ranks of half the batch each (the same global batch)."""
    return {
        "data": data,
        "out": str(out),
        "ckpt_dir": str(out / "ckpt"),
        "batch": BATCH // 2,
        "devices": 2,
        "strategy": strategy,
        "workers": workers,
    }


@pytest.mark.slow
def test_two_ranks_killed_resume_on_two_and_on_one(
    data: str, tmp_path: Path, order: list[list[list[int]]]
) -> None:
    out = tmp_path / "ddp"
    run = two_ranks(data, out, "ddp", workers=2)
    assert train({**run, "kill_at_steps": [10]}) != 0
    assert len(global_batches(out, 2)) == 10

    # Elastic: the same checkpoint continued by a single process with batch 8 (global batch 8).
    elastic = tmp_path / "elastic"
    shutil.copytree(out, elastic)
    single = {**run, "out": str(elastic), "ckpt_dir": str(elastic / "ckpt")}
    single.update(devices=1, strategy="auto", batch=BATCH, workers=0, resume="last")
    assert train(single) == 0

    assert train({**run, "resume": "last"}) == 0
    assert global_batches(out, 2) == order[0] + order[1]

    rank0, rank1 = trained(elastic, 0), trained(elastic, 1)
    assert len(rank1) == 10  # rank 1 only trained before the kill
    before = [a["ids"] + b["ids"] for a, b in zip(rank0, rank1)]  # the 2-rank steps
    after = [record["ids"] for record in rank0[10:]]  # the single process's steps
    assert before + after == order[0] + order[1]


@pytest.mark.slow
def test_ddp_spawn(data: str, tmp_path: Path, order: list[list[list[int]]]) -> None:
    """ddp_spawn ranks (spawned processes; the environment carries LOCAL_RANK only) split every
    global batch like one process reads it, also with a DataLoader worker per rank (spawned
    too, inside a spawned rank)."""
    out = tmp_path / "spawn"
    run = {
        **two_ranks(data, out, "ddp_spawn", workers=1),
        "max_steps": 6,
        "every_n_steps": 0,
    }
    assert train(run) == 0
    assert global_batches(out, 2) == order[0][:6]
