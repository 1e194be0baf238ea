"""Running Composer training processes (``train_run``) and reading what they trained on."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import DataLoader

from streaming_lightning import MDSWriter, StreamingDataset

ROOT = Path(__file__).parents[3]
SAMPLES = 61  # 16 global batches of 4 per epoch, the last one padded
BATCH = 4
SEED = 7  # shuffle_seed used by train_run


def write_dataset(out: Path, samples: int = SAMPLES) -> str:
    columns = {"id": "int", "x": "ndarray:float32:4"}
    with MDSWriter(out=str(out), columns=columns, size_limit=300) as writer:
        for i in range(samples):
            x = np.array([np.sin(0.1 * i), np.cos(0.3 * i), (i % 7) / 7.0, 1.0], np.float32)
            writer.write({"id": i, "x": x})
    return str(out)


def dataset_order(data: str, epochs: int, batch: int = BATCH) -> list[list[int]]:
    """The global batches of ``epochs`` epochs, read straight from the dataset (one rank)."""
    dataset = StreamingDataset(local=data, shuffle=True, shuffle_seed=SEED, batch_size=batch)
    loader = DataLoader(dataset, batch_size=batch)
    return [b["id"].tolist() for _ in range(epochs) for b in loader]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def train(config: dict[str, Any], ranks: int = 1, timeout: float = 150) -> list[int]:
    """Run one training job of ``ranks`` processes to its end; returns their exit codes (-9 for
    a rank that SIGKILLed itself). Whatever a run left behind (workers) is killed with it."""
    out = Path(config["out"])
    out.mkdir(parents=True, exist_ok=True)
    attempt = len(list(out.glob("run*-rank0.log")))
    port = _free_port()
    procs, logs = [], []
    for rank in range(ranks):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        if ranks > 1:
            env.update(
                RANK=str(rank),
                WORLD_SIZE=str(ranks),
                LOCAL_RANK=str(rank),
                LOCAL_WORLD_SIZE=str(ranks),
                NODE_RANK="0",
                MASTER_ADDR="127.0.0.1",
                MASTER_PORT=str(port),
            )
        log = open(out / f"run{attempt}-rank{rank}.log", "w")  # noqa: SIM115
        logs.append(log)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "tests.compat.composer.train_run", json.dumps(config)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, DataLoader workers included
            )
        )
    deadline = time.monotonic() + timeout
    codes: list[int] = []
    try:
        for proc in procs:
            codes.append(proc.wait(timeout=max(1.0, deadline - time.monotonic())))
    finally:
        for proc, log in zip(procs, logs):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            log.close()
    return codes


def log_text(out: str | Path, rank: int = 0) -> str:
    runs = sorted(Path(out).glob(f"run*-rank{rank}.log"))
    return runs[-1].read_text() if runs else ""


def expect(codes: list[int], code: int, out: str | Path) -> None:
    if any(c != code for c in codes):
        raise AssertionError(f"exit codes {codes}, expected {code}:\n{log_text(out)[-5000:]}")


def trained(out: str | Path, rank: int = 0) -> list[dict[str, Any]]:
    """One record per training batch of ``rank``: epoch, batches done, ids."""
    path = Path(out) / f"rank{rank}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def global_batches(out: str | Path, ranks: int) -> list[list[int]]:
    """Each step's global batch: the ranks' batches concatenated in rank order."""
    records = [trained(out, rank) for rank in range(ranks)]
    assert all(len(r) == len(records[0]) for r in records), [len(r) for r in records]
    return [[i for r in records for i in r[step]["ids"]] for step in range(len(records[0]))]


def launch(config: dict[str, Any], nproc: int, timeout: float = 150) -> int:
    """Run ``train_run`` under Composer's own launcher (``composer -n NPROC -m ...``), which
    sets the torch.distributed environment for each rank; returns the launcher's exit code."""
    out = Path(config["out"])
    out.mkdir(parents=True, exist_ok=True)
    launcher = Path(sys.executable).parent / "composer"
    command = [str(launcher), "-n", str(nproc), "--stdout", str(out / "launch-out{rank}.txt")]
    command += ["--stderr", str(out / "launch-err{rank}.txt"), "-m"]
    command += ["tests.compat.composer.train_run", json.dumps(config)]
    with open(out / "launcher.log", "w") as log:
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "MASTER_PORT": str(_free_port())},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            return proc.wait(timeout=timeout)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
