"""Two nodes on one machine: two ``torchrun`` launches (``--nnodes 2 --nproc-per-node 2``,
``--node-rank 0|1``, a c10d rendezvous on 127.0.0.1), each "node" with its own cache directory
in front of the S3 server, train with Lightning DDP (gloo) exactly as one node with 4 ranks
does; each node downloads only the shards its ranks read (as ``simulate`` predicts); and a
mid-epoch checkpoint of the 2-node run resumes exactly on 1 node with 2 ranks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from streaming_lightning import MDSWriter
from streaming_lightning.cli.simulate import Job, simulate
from streaming_lightning.dataset import StreamingDataset
from tests.fixtures.s3_server import S3Server
from tests.fixtures.servers import free_port
from tests.integrations.lightning.helpers import ROOT, global_batches, trained

SAMPLES = 611  # no world size here divides it
BATCH = 4  # per device with 4 ranks: a global batch of 16
NCN = 2  # num_canonical_nodes, fixed: the order must not depend on the job's shape
RESUME_STEP = 12


def torchrun(
    config: dict[str, Any], nodes: int, per_node: int, node_rank: int, port: int, cache: Path
) -> subprocess.Popen[bytes]:
    """One node's launcher, its output in ``out/node<rank>.log``."""
    out = Path(config["out"])
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / f"node{node_rank}.log", "wb")  # noqa: SIM115 (closed with the process)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nnodes={nodes}",
        f"--nproc-per-node={per_node}",
        f"--node-rank={node_rank}",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint=127.0.0.1:{port}",
        "--rdzv-id=multinode-test",
        "--max-restarts=0",
        "-m",
        "tests.integrations.lightning.train_run",
        json.dumps(config),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SL_TEST_NODE_CACHE": str(cache)}
    env.update(OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo", TP_SOCKET_IFNAME="lo")
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def wait(procs: list[subprocess.Popen[bytes]], out: Path, timeout: float = 300) -> None:
    try:
        codes = [proc.wait(timeout=timeout) for proc in procs]
    finally:
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    logs = "\n".join(p.read_text()[-3000:] for p in sorted(out.glob("node*.log")))
    assert codes == [0] * len(procs), f"launchers exited with {codes}:\n{logs}"


def shards_in(cache: Path) -> set[str]:
    return {p.name for p in cache.glob("*.mds")}


@pytest.fixture
def remote(s3: S3Server) -> str:
    url = f"s3://{s3.new_bucket()}/ds"
    with MDSWriter(out=url, columns={"id": "int"}, size_limit=300) as writer:
        for i in range(SAMPLES):
            writer.write({"id": i})
    return url


@pytest.mark.slow
def test_two_nodes_train_like_one_and_resume_on_one(remote: str, tmp_path: Path) -> None:
    run = {
        "data": "",
        "remote": remote,
        "ncn": NCN,
        "max_epochs": 1,
        "strategy": "ddp",
        "workers": 1,
        "every_n_steps": 1,
    }
    # The reference: 1 node x 4 ranks, the whole epoch.
    one = tmp_path / "one-node"
    reference = {**run, "out": str(one), "ckpt_dir": str(one / "ckpt"), "batch": BATCH}
    wait([torchrun({**reference, "devices": 4}, 1, 4, 0, free_port(), one / "cache")], one)
    expected = global_batches(one, 4)
    assert {i for batch in expected for i in batch} == set(range(SAMPLES))  # (+ epoch padding)

    # 2 nodes x 2 ranks, each node its own cache.
    two = tmp_path / "two-nodes"
    config = {**reference, "out": str(two), "ckpt_dir": str(two / "ckpt"), "devices": 2}
    config["num_nodes"] = 2
    port = free_port()
    caches = [two / "cache-node0", two / "cache-node1"]
    wait([torchrun(config, 2, 2, node, port, caches[node]) for node in (0, 1)], two)
    assert global_batches(two, 4) == expected, "2 nodes x 2 ranks saw other global batches"

    # Each node fetched exactly the shards its two ranks read, as simulate predicts.
    dataset = StreamingDataset(
        remote=remote, local=str(tmp_path / "sim"), shuffle=True, shuffle_seed=7, batch_size=BATCH
    )
    sim = simulate(
        dataset,
        Job(nodes=2, devices_per_node=2, workers=1, batch_size=BATCH, num_canonical_nodes=NCN),
    )
    fetched = [shards_in(cache) for cache in caches]
    assert [len(f) for f in fetched] == sim.node_shards.tolist()
    assert all(0 < len(f) < len(dataset.shard_sizes) for f in fetched), "a node fetched all"
    print(f"shards per node: {[len(f) for f in fetched]} of {len(dataset.shard_sizes)}")

    # The 2-node run's checkpoint after step 12 resumes on 1 node x 2 ranks (batch doubled).
    resumed = tmp_path / "resumed"
    (resumed / "ckpt").mkdir(parents=True)
    step_ckpt = next((two / "ckpt").glob(f"*step={RESUME_STEP}.ckpt"))
    (resumed / "ckpt" / "last.ckpt").write_bytes(step_ckpt.read_bytes())
    again = {**reference, "out": str(resumed), "ckpt_dir": str(resumed / "ckpt")}
    again.update(devices=2, batch=2 * BATCH, resume="last")
    wait([torchrun(again, 1, 2, 0, free_port(), resumed / "cache")], resumed)
    steps = [record["step"] for record in trained(resumed, 0)]
    assert steps[0] == RESUME_STEP, steps[:3]
    assert global_batches(resumed, 2) == expected[RESUME_STEP:]
