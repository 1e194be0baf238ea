"""The training command the chaos test kills and restarts: ``python -m tests.reliability.chaos_run
CONFIG`` (CONFIG: a JSON file; every restart runs exactly the same command).

Lightning on CPU with 2 DDP ranks (Lightning's own launcher starts rank 1 by re-running this
command), a StreamingDataModule over an S3 remote (the endpoint comes from the environment:
moto, usually behind a slow-link proxy) with a small ``cache_limit`` so shards are evicted and
downloaded again all the time, 2 DataLoader workers per rank, shuffling on. A checkpoint every
few steps (``last.ckpt`` only, written by AtomicCheckpointIO); if ``last.ckpt`` exists the run
resumes from it, the way ``train.py`` auto-resumes.

Every step, rank 0 appends the step's global batch (both ranks' sample ids, gathered) to
``attempt-<pid>.jsonl`` in ``log_dir``, flushed and fsynced before the step ends: the record of
what this attempt trained on survives a SIGKILL.

Config keys: remote, local (cache dir), ckpt_dir, log_dir, batch (per device), workers,
cache_limit, shuffle_block_size, max_epochs, max_steps, every_n_steps, ckpt_floats (size of a
buffer saved in every checkpoint, so a checkpoint takes long enough to write that kills land
during the write), checkpoint_io ("atomic": AtomicCheckpointIO, the default; "lightning":
Lightning's own), download_timeout, download_retry.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from streaming_lightning.integrations.lightning import AtomicCheckpointIO, StreamingDataModule

LAST = "last.ckpt"


class Tiny(pl.LightningModule):
    """A linear model over features of the sample id, plus a large buffer that only makes the
    checkpoint big."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.config = config
        self.layer = torch.nn.Linear(4, 1)
        self.register_buffer("ballast", torch.zeros(int(config.get("ckpt_floats", 0))))
        self._log: Any = None

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        ids = batch["id"]
        i = ids.to(torch.float32)
        x = torch.stack(
            [torch.sin(0.1 * i), torch.cos(0.3 * i), (ids % 7) / 7.0, torch.ones_like(i)]
        )
        loss = torch.nn.functional.mse_loss(self.layer(x.T), ((ids % 5) / 5.0).unsqueeze(1))
        gathered = self.all_gather(ids)  # (ranks, batch): rank r holds slice r of the global batch
        assert isinstance(gathered, torch.Tensor)
        if self.global_rank == 0:
            self._append(
                {
                    "step": int(self.global_step),
                    "epoch": int(self.current_epoch),
                    "batch_idx": batch_idx,
                    "ids": gathered.reshape(-1).tolist(),
                    "t": time.time(),
                }
            )
        return loss

    def _append(self, record: dict[str, Any]) -> None:
        if self._log is None:
            path = Path(self.config["log_dir"]) / f"attempt-{os.getpid()}.jsonl"
            self._log = open(path, "a")  # noqa: SIM115 - held for the run, closed by exit or kill
        self._log.write(json.dumps(record) + "\n")
        self._log.flush()
        os.fsync(self._log.fileno())

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)


def run(config: dict[str, Any]) -> None:
    Path(config["log_dir"]).mkdir(parents=True, exist_ok=True)
    pl.seed_everything(1, verbose=False)
    train = {
        "remote": config["remote"],
        "local": config["local"],
        "shuffle": True,
        "shuffle_seed": 7,
        "shuffle_block_size": config.get("shuffle_block_size"),
        "cache_limit": config["cache_limit"],
        "download_retry": config.get("download_retry", 4),
        "download_timeout": config.get("download_timeout", 20),
    }
    datamodule = StreamingDataModule(
        train=train, batch_size=config["batch"], num_workers=config.get("workers", 2)
    )
    checkpoints = ModelCheckpoint(
        dirpath=config["ckpt_dir"],
        every_n_train_steps=config.get("every_n_steps", 5),
        save_top_k=0,
        save_last=True,
    )
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_epochs=config.get("max_epochs", 2),
        max_steps=config.get("max_steps", -1),
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=[checkpoints],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=config["ckpt_dir"],
        deterministic=True,
        # "lightning": Lightning's own checkpoint writing, to show what it leaves behind.
        plugins=[] if config.get("checkpoint_io") == "lightning" else [AtomicCheckpointIO()],
    )
    last = os.path.join(config["ckpt_dir"], LAST)
    trainer.fit(
        Tiny(config), datamodule=datamodule, ckpt_path=last if os.path.exists(last) else None
    )


def main() -> None:
    with open(sys.argv[1]) as file:
        run(json.load(file))


if __name__ == "__main__":
    main()
