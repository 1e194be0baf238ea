"""Elastic determinism with real processes: the sequence of global batches (each step's rank
batches concatenated in rank order) is the same for 1, 2, 4 and 8 ranks, on 1 or 2 simulated
nodes, with 0, 1, 2 or 4 DataLoader workers — and a resume on another world continues it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from streaming_lightning import MDSWriter
from tests.fixtures.servers import free_port

ROOT = Path(__file__).parents[2]
GLOBAL_BATCH = 16
NCN = 4


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("elastic") / "ds"
    with MDSWriter(
        out=str(out), columns={"x": "int"}, size_limit=600, compression="zstd"
    ) as writer:
        for i in range(1003):  # not a multiple of anything
            writer.write({"x": i})
    return str(out)


def run_job(
    data: str,
    tmp: Path,
    world: int,
    nodes: int,
    workers: int,
    *,
    epochs: int = 2,
    gloo: bool = False,
    resume: dict[str, Any] | None = None,
    state_after: int | None = None,
    replication: int | None = None,
    extra: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    local = world // nodes
    procs, outs = [], []
    init = f"tcp://127.0.0.1:{free_port()}"
    for rank in range(world):
        out = (
            tmp
            / f"w{world}n{nodes}k{workers}r{rank}{'g' if gloo else ''}{'R' if resume else ''}x{replication}{len(json.dumps(extra))}.json"
        )
        config = {
            "data": data,
            "batch": GLOBAL_BATCH // (world // (replication or 1)),
            "replication": replication,
            **(extra or {}),
            "ncn": NCN,
            "workers": workers,
            "out": str(out),
            "epochs": epochs,
            "gloo": gloo,
            "init": init,
            "resume": resume,
            "state_after": state_after,
        }
        env = {
            **os.environ,
            "RANK": str(rank),
            "WORLD_SIZE": str(world),
            "LOCAL_RANK": str(rank % local),
            "LOCAL_WORLD_SIZE": str(local),
            "PYTHONPATH": str(ROOT),
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "tests.dataset.elastic_run", json.dumps(config)],
                env=env,
                cwd=ROOT,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
        outs.append(out)
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
    return [json.loads(out.read_text()) for out in outs]


def global_batches(results: list[dict[str, Any]], epoch: int) -> list[list[int]]:
    per_rank = [r["epochs"][epoch] for r in results]
    steps = {len(batches) for batches in per_rank}
    assert len(steps) == 1, f"ranks ran different numbers of steps: {steps}"
    return [[x for rank in per_rank for x in rank[k]] for k in range(steps.pop())]


@pytest.mark.slow
def test_global_batches_identical_across_worlds_nodes_and_workers(
    data: str, tmp_path: Path
) -> None:
    baseline = run_job(data, tmp_path, 1, 1, 0)
    reference = [global_batches(baseline, e) for e in range(2)]
    assert reference[0] != reference[1], "each epoch reshuffles"
    for epoch in range(2):
        flat = [x for batch in reference[epoch] for x in batch]
        assert set(flat) == set(range(1003)), "every sample at least once"
        assert len(flat) - 1003 < GLOBAL_BATCH * NCN, "padding stays small"
        assert all(len(batch) == GLOBAL_BATCH for batch in reference[epoch]), "full batches only"
    assert baseline[0]["len"] == len(reference[0]) * GLOBAL_BATCH
    for world, nodes, workers in [(2, 1, 2), (4, 2, 1), (8, 2, 0), (1, 1, 4), (4, 1, 4)]:
        results = run_job(data, tmp_path, world, nodes, workers)
        assert [r["len"] for r in results] == [len(reference[0]) * GLOBAL_BATCH // world] * world
        for epoch in range(2):
            assert global_batches(results, epoch) == reference[epoch], (
                world,
                nodes,
                workers,
                epoch,
            )


@pytest.mark.slow
def test_torch_distributed_world_is_used_when_initialised(data: str, tmp_path: Path) -> None:
    reference = global_batches(run_job(data, tmp_path, 1, 1, 0, epochs=1), 0)
    results = run_job(data, tmp_path, 2, 1, 1, epochs=1, gloo=True)
    assert global_batches(results, 0) == reference


@pytest.mark.slow
def test_resume_mid_epoch_on_another_world(data: str, tmp_path: Path) -> None:
    reference = global_batches(run_job(data, tmp_path, 1, 1, 0, epochs=1), 0)
    consumed_steps = 23
    # A 2-rank job checkpoints after 23 steps; the state is global, so any rank's dict works.
    state = run_job(data, tmp_path, 2, 1, 0, epochs=1, state_after=consumed_steps * GLOBAL_BATCH)[
        0
    ]["state"]
    assert state["sample_in_epoch"] == consumed_steps * GLOBAL_BATCH and state["epoch"] == 0
    resumed = run_job(data, tmp_path, 4, 2, 2, epochs=1, resume=state)
    assert global_batches(resumed, 0) == reference[consumed_steps:]


@pytest.mark.slow
def test_replication_gives_tensor_parallel_peers_the_same_samples(
    data: str, tmp_path: Path
) -> None:
    reference = global_batches(run_job(data, tmp_path, 2, 1, 0, epochs=1), 0)
    results = run_job(data, tmp_path, 4, 1, 1, epochs=1, replication=2)
    assert (
        results[0]["epochs"] == results[1]["epochs"]
        and results[2]["epochs"] == results[3]["epochs"]
    )
    assert results[0]["epochs"] != results[2]["epochs"]
    assert global_batches([results[0], results[2]], 0) == reference


@pytest.fixture(scope="module")
def second(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("elastic2") / "ds"
    with MDSWriter(out=str(out), columns={"x": "int"}, size_limit=500) as writer:
        for i in range(10_000, 10_301):
            writer.write({"x": i})
    return str(out)


@pytest.mark.slow
@pytest.mark.parametrize("batching", ["random", "stratified", "per_stream"])
def test_stream_mixing_is_elastic(data: str, second: str, tmp_path: Path, batching: str) -> None:
    extra = {"streams": [[data, 3], [second, 1]], "batching": batching}
    reference = global_batches(run_job(data, tmp_path, 1, 1, 0, epochs=1, extra=extra), 0)
    flat = [x for batch in reference for x in batch]
    assert 0.2 < sum(x >= 10_000 for x in flat) / len(flat) < 0.3, "proportions 3:1 hold"
    for world, nodes, workers in [(2, 1, 2), (4, 2, 1)]:
        results = run_job(data, tmp_path, world, nodes, workers, epochs=1, extra=extra)
        assert global_batches(results, 0) == reference, (batching, world, workers)


@pytest.mark.slow
def test_ranks_share_one_bounded_cache(data: str, tmp_path: Path) -> None:
    """4 ranks x 2 workers stream a remote through one node cache far smaller than the data:
    every sample arrives, each rank sees the baseline order, the cache stays near its limit."""
    reference = global_batches(run_job(data, tmp_path, 1, 1, 0, epochs=1), 0)
    cache = tmp_path / "node-cache"
    extra = {"cache": str(cache), "cache_limit": 6000}
    results = run_job(data, tmp_path, 4, 1, 2, epochs=1, extra=extra)
    assert global_batches(results, 0) == reference
    shard_sizes = [f.stat().st_size for f in cache.iterdir() if f.name.startswith("shard.")]
    # Evictors admit a shard under a lock but download after releasing it, so concurrent
    # downloaders (4 ranks x 2 workers here) may each overshoot by at most one shard.
    assert sum(shard_sizes) <= 6000 + 8 * max(shard_sizes)
    total = len(json.loads((Path(data) / "index.json").read_text())["shards"])
    assert len(shard_sizes) < total, (
        f"eviction happened: only {len(shard_sizes)} of {total} shards remain"
    )
