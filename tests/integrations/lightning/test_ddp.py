"""DDP with real processes (gloo on CPU): two ranks killed mid-epoch resume on two ranks, or on
one rank with the per-device batch doubled (the same global batch), and the global sequence of
batches is the one a single process trains on. Ranks learn their place from the trainer; nobody
exports RANK/WORLD_SIZE."""

from __future__ import annotations

import json
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


@pytest.mark.slow
def test_validation_on_two_ranks_counts_each_sample_once_but_one(data: str, tmp_path: Path) -> None:
    """The val split (whole_batches=False, the DataModule's default for it): 203 samples over 2
    ranks are 102 each — one sample repeated so both ranks run 26 batches, the last one short —
    and the run ends (no rank waits at the epoch end for a batch the other never gets)."""
    out = tmp_path / "val"
    run = {
        **two_ranks(data, out, "ddp", workers=1),
        "max_epochs": 1,
        "val": True,
        "limit_val_batches": 1.0,
        "every_n_steps": 0,
    }
    assert train(run) == 0
    per_rank = []
    for rank in range(2):
        lines = (out / f"val_rank{rank}.jsonl").read_text().splitlines()
        per_rank.append([json.loads(line)["ids"] for line in lines])
    assert [len(batches) for batches in per_rank] == [26, 26]
    assert [len(b) for batches in per_rank for b in batches[-1:]] == [2, 2]
    ids = [i for batches in per_rank for b in batches for i in b]
    assert len(ids) == 204 and set(ids) == set(range(203))
