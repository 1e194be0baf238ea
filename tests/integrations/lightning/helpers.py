"""Running Lightning training subprocesses (``train_run``) and reading what they trained on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader

from streaming_lightning import MDSWriter, StreamingDataset

ROOT = Path(__file__).parents[3]
SAMPLES = 203  # 26 global batches of 8 per epoch, the last one padded
BATCH = 8
SEED = 7  # shuffle_seed used by train_run


def write_dataset(out: Path, samples: int = SAMPLES, first_id: int = 0) -> str:
    with MDSWriter(out=str(out), columns={"id": "int"}, size_limit=400) as writer:
        for i in range(first_id, first_id + samples):
            writer.write({"id": i})
    return str(out)


def dataset_order(data: str, epochs: int, batch: int = BATCH) -> list[list[list[int]]]:
    """The global batches of each epoch, read straight from the dataset (one rank)."""
    dataset = StreamingDataset(local=data, shuffle=True, shuffle_seed=SEED, batch_size=batch)
    loader = DataLoader(dataset, batch_size=batch)
    return [[batch["id"].tolist() for batch in loader] for _ in range(epochs)]


def train(config: dict[str, Any], timeout: float = 240) -> int:
    """Run one training process (and the ranks and workers it starts) to its end; returns its
    exit code (-9 when it SIGKILLed itself). Whatever it left behind is killed with it."""
    out = Path(config["out"])
    out.mkdir(parents=True, exist_ok=True)
    runs = len(list(out.glob("run*.log")))
    log_path = out / f"run{runs}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integrations.lightning.train_run", json.dumps(config)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: DDP ranks and loader workers
        )
        try:
            code = proc.wait(timeout=timeout)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # orphaned ranks/workers of a killed run
            except ProcessLookupError:
                pass
    if code not in (0, -signal.SIGKILL):
        raise AssertionError(f"training run failed ({code}):\n{log_path.read_text()[-5000:]}")
    return code


def train_with_kills(config: dict[str, Any], kills: list[dict[str, Any]]) -> None:
    """A run that SIGKILLs itself at each point in ``kills`` (config overrides), resumed from
    ``last.ckpt`` each time, then resumed once more to the end."""
    for index, kill in enumerate([*kills, {}]):
        run = {**config, **kill}
        if index:
            run.setdefault("resume", "last")
        code = train(run)
        assert code == (-signal.SIGKILL if kill else 0), (index, kill, code)


def trained(out: str | Path, rank: int = 0) -> list[dict[str, Any]]:
    """One record per training batch of ``rank``: epoch, batch_idx, step, ids, loss."""
    path = Path(out) / f"rank{rank}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def global_batches(out: str | Path, ranks: int) -> list[list[int]]:
    """Each step's global batch: the ranks' batches concatenated in rank order (the plan deals
    rank r the r-th slice of every global batch)."""
    records = [trained(out, rank) for rank in range(ranks)]
    steps = len(records[0])
    assert all(len(r) == steps for r in records), [len(r) for r in records]
    return [[i for r in records for i in r[step]["ids"]] for step in range(steps)]
