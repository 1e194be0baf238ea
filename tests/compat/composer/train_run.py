"""One Composer training process: ``python -m tests.compat.composer.train_run CONFIG_JSON``.

Trains a Linear layer (CPU) on a StreamingDataset of ``{"id": int, "x": float32[4]}`` samples
through :func:`build_dataspec` (or a plain DataLoader) with :class:`StreamingMonitor`, and appends one JSON line per
training batch to ``rank{R}.jsonl`` (epoch, batches done, the batch's ids), fsynced at
``batch_end``, before the batch's checkpoint, so a SIGKILL loses nothing that was trained on.
A distributed rank learns its place from the torch.distributed environment (RANK, WORLD_SIZE,
LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) and Composer's dist init (gloo).

Config keys: data, out, batch (per device), workers, mode ("dataspec": build_dataspec;
"plain": a torch DataLoader over a StreamingDataset), monitor (add StreamingMonitor, default
true), save_interval (e.g. "4ba", "1ep"),
max_duration, kill_at_batch (SIGKILL before loading the next batch once this many batches are
done, i.e. after that batch's checkpoint), kill_at_epoch_start (SIGKILL when that epoch starts,
i.e. after the previous epoch's checkpoint), autoresume, load_path, allow_batch_change.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import torch
from composer import Trainer
from composer.core import Callback, State
from composer.loggers import Logger
from composer.models import ComposerModel
from torch.utils.data import DataLoader

from streaming_lightning import StreamingDataset
from streaming_lightning.integrations.composer import StreamingMonitor, build_dataspec

RUN_NAME = "composer-resume"


class Tiny(ComposerModel):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.layer(batch["x"])

    def loss(self, outputs: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        target = ((batch["id"] % 5) / 5.0).to(torch.float32).unsqueeze(1)
        return torch.nn.functional.mse_loss(outputs, target)


class Record(Callback):
    def __init__(self, out: Path) -> None:
        self.out = out

    def batch_end(self, state: State, logger: Logger) -> None:
        rank = int(os.environ.get("RANK", "0"))
        line = {
            "epoch": int(state.timestamp.epoch),
            "batches": int(state.timestamp.batch),
            "ids": state.batch["id"].tolist(),
        }
        with open(self.out / f"rank{rank}.jsonl", "a") as file:
            file.write(json.dumps(line) + "\n")
            file.flush()
            os.fsync(file.fileno())


class Kill(Callback):
    """SIGKILLs this process once the checkpoint of the chosen point is written (the
    CheckpointSaver runs its checkpoint events before the next batch is requested)."""

    def __init__(self, at_batch: int | None, at_epoch_start: int | None) -> None:
        self.at_batch, self.at_epoch_start = at_batch, at_epoch_start

    def before_dataloader(self, state: State, logger: Logger) -> None:
        if int(state.timestamp.batch) == self.at_batch:
            os.kill(os.getpid(), signal.SIGKILL)

    def epoch_start(self, state: State, logger: Logger) -> None:
        if int(state.timestamp.epoch) == self.at_epoch_start:
            os.kill(os.getpid(), signal.SIGKILL)


def run(config: dict[str, Any]) -> None:
    out = Path(config["out"])
    out.mkdir(parents=True, exist_ok=True)
    dataset = {"local": config["data"], "shuffle": True, "shuffle_seed": 7}
    workers = config.get("workers", 0)
    loader: Any
    if config.get("mode", "dataspec") == "dataspec":
        loader = build_dataspec(dataset, config["batch"], num_workers=workers)
    else:  # "plain": a torch DataLoader over a StreamingDataset
        streaming = StreamingDataset(**dataset, batch_size=config["batch"])
        loader = DataLoader(streaming, batch_size=config["batch"], num_workers=workers)
    monitor = StreamingMonitor(
        log_interval=4, allow_global_batch_change=config.get("allow_batch_change", False)
    )
    trainer = Trainer(
        model=Tiny(),
        train_dataloader=loader,
        optimizers=None,
        max_duration=config.get("max_duration", "2ep"),
        device="cpu",
        seed=1,
        callbacks=[
            Record(out),
            *([monitor] if config.get("monitor", True) else []),
            Kill(config.get("kill_at_batch"), config.get("kill_at_epoch_start")),
        ],
        loggers=[],
        progress_bar=False,
        log_to_console=False,
        run_name=RUN_NAME,
        save_folder=str(out / "ckpt"),
        save_interval=config.get("save_interval", "4ba"),
        save_num_checkpoints_to_keep=-1,
        save_overwrite=True,
        autoresume=config.get("autoresume", False),
        load_path=config.get("load_path"),
    )
    trainer.fit()


def main() -> None:
    run(json.loads(sys.argv[1]))


if __name__ == "__main__":
    main()
