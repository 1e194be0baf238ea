"""Training a recipe with Lightning: its model in a LightningModule, its datasets in a
StreamingDataModule, checkpoints every N steps, and auto-resume from the last one.

Multi-GPU and multi-node runs use Lightning's own launcher (``trainer.devices``,
``trainer.num_nodes``, ``trainer.strategy``; or ``torchrun``, which Lightning detects).
"""

from __future__ import annotations

import os
import time
from typing import Any, cast

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from omegaconf import DictConfig
from torch import nn

from recipes.common.config import dataset_kwargs
from recipes.common.metrics import RecipeMetric, batch_value
from recipes.common.optim import build_optimizer
from recipes.common.task import Task, first_dimension, step
from streaming_lightning.integrations.lightning import AtomicCheckpointIO, StreamingDataModule

LAST = "last.ckpt"


class RecipeModule(pl.LightningModule):
    """A recipe's model and loss as a LightningModule."""

    def __init__(self, task: Task, config: DictConfig, started: float | None = None) -> None:
        super().__init__()
        self.task = task
        self.config = config
        self.model = task.build_model(config.model)
        # Over the whole evaluation pass, summed across ranks (Lightning computes and resets
        # them at the epoch end); their states are not saved in checkpoints.
        self.eval_metrics = nn.ModuleDict({name: RecipeMetric(name) for name in task.metric_names})
        self._started = started  # monotonic time the run began: logs time to first batch

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self._started is not None:
            # Startup cost a user waits through, resume included (model, data, restore).
            self.log("time_to_first_batch_s", time.monotonic() - self._started)
            self._started = None

    def forward(self, *args: Any) -> Any:
        return self.model(*args)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss, metrics = step(self.task, self.model, batch)
        self.log("train/loss", loss, prog_bar=True)
        for name, value in metrics.items():
            self.log(f"train/{name}", batch_value(value))
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        loss, metrics = step(self.task, self.model, batch)
        samples = (self.task.batch_samples or first_dimension)(batch)
        self.log("eval/loss", loss, prog_bar=True, sync_dist=True, batch_size=samples)
        for name, value in metrics.items():
            metric = cast(RecipeMetric, self.eval_metrics[name])
            metric.update(value, samples)
            self.log(f"eval/{name}", metric)

    def configure_optimizers(self) -> Any:
        total = self.trainer.estimated_stepping_batches  # the data module keeps the position
        optimizer, schedule = build_optimizer(self.model.parameters(), self.config, int(total))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def build_datamodule(config: DictConfig, task: Task) -> StreamingDataModule:
    data = config.data
    return StreamingDataModule(
        train=dataset_kwargs(config, data.train_split),
        val=dataset_kwargs(config, data.eval_split) | {"shuffle": False}
        if data.eval_split
        else None,
        batch_size=data.batch_size,
        num_workers=data.num_workers,
        persistent_workers=False,
        dataset_class=task.dataset_class,
        collate_fn=task.collate,
    )


def resume_path(config: DictConfig) -> str | None:
    last = os.path.join(config.checkpoint.dir, LAST)
    return last if config.checkpoint.resume and os.path.exists(last) else None


def train(config: DictConfig, task: Task) -> pl.Trainer:
    started = time.monotonic()
    pl.seed_everything(config.trainer.seed, workers=True, verbose=False)
    t = config.trainer
    checkpoints = ModelCheckpoint(
        dirpath=config.checkpoint.dir,
        filename="{step}",
        every_n_train_steps=config.checkpoint.every_n_steps,
        save_last=True,
        save_top_k=1,
    )
    trainer = pl.Trainer(
        accelerator=t.accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        strategy=t.strategy,
        max_epochs=t.max_epochs,
        max_steps=t.max_steps,
        precision=t.precision,
        log_every_n_steps=t.log_every_n_steps,
        enable_progress_bar=t.progress_bar,
        callbacks=[checkpoints],
        logger=CSVLogger(os.path.join(config.checkpoint.dir, "logs"), name=config.run_name),
        num_sanity_val_steps=0,
        limit_val_batches=1.0 if config.data.eval_split else 0,
        plugins=[AtomicCheckpointIO()],  # a kill mid-save never leaves a checkpoint to trip over
    )
    trainer.fit(
        RecipeModule(task, config, started),
        datamodule=build_datamodule(config, task),
        ckpt_path=resume_path(config),
    )
    return trainer
