"""One Lightning training run: ``python -m tests.integrations.lightning.train_run CONFIG_JSON``.

Trains a Linear layer on a StreamingDataset of ``{"id": int}`` samples (features and targets
are functions of the id) and appends one JSON line per training batch to ``rank{R}.jsonl``
(epoch, batch index, global step, the batch's ids, the loss), flushed and fsynced before the
step ends, so a SIGKILL loses nothing that was trained on.

Config keys (all optional but ``data``, ``out``):
  mode: "datamodule" (StreamingDataModule), "loader" (StreamingDataLoader returned by the
        LightningModule), "plain" (torch DataLoader + StreamingResumeCallback);
  batch, workers, context (DataLoader multiprocessing_context), devices, strategy, max_epochs,
  max_steps, limit_train_batches, accumulate, val (a val split; each rank appends the ids of
  its validation batches to ``val_rank{R}.jsonl``), limit_val_batches, val_check_interval,
  every_n_steps / every_n_epochs (ModelCheckpoint), kill_at_steps / kill_at_epoch_end (every
  rank SIGKILLs itself right after the checkpoint of that global step / epoch end is written),
  resume (ckpt_path: "last" or a path), estimated (configure_optimizers reads
  trainer.estimated_stepping_batches for OneCycleLR: the train loader is built before the
  restore, Lightning bug #20550), callback (add StreamingResumeCallback), seed, deterministic,
  remote (read this dataset URL through the node cache directory ``cache``, or the one in
  $SL_TEST_NODE_CACHE: set per simulated node), ncn (num_canonical_nodes), num_nodes.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader

from streaming_lightning import StreamingDataset
from streaming_lightning.integrations.lightning import (
    StreamingDataLoader,
    StreamingDataModule,
    StreamingResumeCallback,
)


def features(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    i = ids.to(torch.float32)
    x = torch.stack([torch.sin(0.1 * i), torch.cos(0.3 * i), (ids % 7) / 7.0, torch.ones_like(i)])
    return x.T.contiguous(), ((ids % 5) / 5.0).unsqueeze(1)


class Tiny(pl.LightningModule):
    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.config = config
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = features(batch["id"])
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        line = {
            "epoch": self.current_epoch,
            "batch_idx": batch_idx,
            "step": self.global_step,
            "ids": batch["id"].tolist(),
            "loss": loss.item(),
        }
        path = Path(self.config["out"]) / f"rank{self.global_rank}.jsonl"
        with open(path, "a") as file:
            file.write(json.dumps(line) + "\n")
            file.flush()
            os.fsync(file.fileno())
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        x, y = features(batch["id"])
        self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y), sync_dist=True)
        path = Path(self.config["out"]) / f"val_rank{self.global_rank}.jsonl"
        with open(path, "a") as file:
            file.write(json.dumps({"epoch": self.current_epoch, "ids": batch["id"].tolist()}))
            file.write("\n")

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)
        if not self.config.get("estimated"):
            return optimizer
        total = self.trainer.estimated_stepping_batches  # builds the train loader now (#20550)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.2, total_steps=total)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    # Used by the "loader" and "plain" modes (no DataModule).
    def train_dataloader(self) -> DataLoader:  # type: ignore[type-arg]
        config = self.config
        dataset = StreamingDataset(
            local=config["data"], shuffle=True, batch_size=config["batch"], shuffle_seed=7
        )
        if config["mode"] == "loader":
            return StreamingDataLoader(
                dataset, batch_size=config["batch"], num_workers=config.get("workers", 0)
            )
        return DataLoader(dataset, batch_size=config["batch"], num_workers=config.get("workers", 0))


class KillingCheckpoint(ModelCheckpoint):
    """Writes checkpoints like ModelCheckpoint; after the one of a listed step is on disk (all
    ranks have passed the save's barrier), every rank SIGKILLs itself."""

    def __init__(self, kill_at_steps: list[int], kill_at_epoch_end: list[int], **kwargs: Any):
        super().__init__(**kwargs)
        self.kill_at_steps, self.kill_at_epoch_end = set(kill_at_steps), set(kill_at_epoch_end)

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any, **kwargs: Any) -> None:
        super().on_train_batch_end(trainer, *args, **kwargs)
        if trainer.global_step in self.kill_at_steps and not trainer.fit_loop._should_accumulate():
            os.kill(os.getpid(), signal.SIGKILL)

    def on_train_epoch_end(self, trainer: pl.Trainer, *args: Any, **kwargs: Any) -> None:
        super().on_train_epoch_end(trainer, *args, **kwargs)
        if trainer.current_epoch in self.kill_at_epoch_end:
            os.kill(os.getpid(), signal.SIGKILL)


def run(config: dict[str, Any]) -> None:
    config = {"mode": "datamodule", **config}
    Path(config["out"]).mkdir(parents=True, exist_ok=True)
    pl.seed_everything(config.get("seed", 1), verbose=False)
    model = Tiny(config)
    callbacks: list[pl.Callback] = [
        KillingCheckpoint(
            config.get("kill_at_steps", []),
            config.get("kill_at_epoch_end", []),
            dirpath=config.get("ckpt_dir"),
            every_n_train_steps=config.get("every_n_steps", 1),
            every_n_epochs=config.get("every_n_epochs"),
            save_top_k=-1,
            save_last=True,
        )
    ]
    if config["mode"] == "plain" or config.get("callback"):
        callbacks.append(StreamingResumeCallback())
    datamodule = None
    if config["mode"] == "datamodule":
        split: dict[str, Any] = {"local": config["data"], "shuffle": True, "shuffle_seed": 7}
        if config.get("remote"):  # a remote dataset behind this node's cache directory
            cache = config.get("cache") or os.environ["SL_TEST_NODE_CACHE"]
            split.update(remote=config["remote"], local=cache)
        if config.get("ncn"):
            split["num_canonical_nodes"] = config["ncn"]
        datamodule = StreamingDataModule(
            train=split,
            val={"local": config["data"]} if config.get("val") else None,
            batch_size=config["batch"],
            num_workers=config.get("workers", 0),
            loader_kwargs={"multiprocessing_context": config.get("context")},
        )
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=config.get("devices", 1),
        num_nodes=config.get("num_nodes", 1),
        strategy=config.get("strategy", "auto"),
        max_epochs=config.get("max_epochs", 2),
        max_steps=config.get("max_steps", -1),
        limit_train_batches=config.get("limit_train_batches", 1.0),
        limit_val_batches=config.get("limit_val_batches", 2) if config.get("val") else 0,
        val_check_interval=config.get("val_check_interval", 1.0),
        accumulate_grad_batches=config.get("accumulate", 1),
        num_sanity_val_steps=0,
        callbacks=callbacks,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=config["out"],
        deterministic=config.get("deterministic", True),
    )
    trainer.fit(model, datamodule=datamodule, ckpt_path=config.get("resume"))


def main() -> None:
    run(json.loads(sys.argv[1]))


if __name__ == "__main__":
    main()
