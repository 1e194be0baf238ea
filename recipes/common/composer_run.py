"""Training a recipe with Composer (``trainer.kind=composer``): the recipe's model in a
ComposerModel, its dataset through ``build_dataspec``, checkpoints every N batches and
Composer's autoresume (the dataset position is in every checkpoint, so a rerun continues
mid-epoch). Needs the ``composer`` extra, in an environment with Composer's torch.

Multi-GPU runs use Composer's launcher (``composer -n 8 train.py ...``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from omegaconf import DictConfig

from recipes.common.config import dataset_kwargs
from recipes.common.metrics import MetricValue, RecipeMetric
from recipes.common.optim import build_optimizer
from recipes.common.task import Task, first_dimension, step
from streaming_lightning.extras import require_extra

require_extra("composer", "composer", "trainer.kind=composer")

from composer import Trainer  # noqa: E402
from composer.models import ComposerModel  # noqa: E402
from torchmetrics import Metric  # noqa: E402

from streaming_lightning.integrations.composer import (  # noqa: E402
    StreamingMonitor,
    build_dataspec,
)


class RecipeModel(ComposerModel):  # type: ignore[misc]
    """A recipe's model and loss as a ComposerModel (the loss is computed in ``forward``:
    recipes define loss over the batch, not over separate outputs). Evaluation logs the loss
    and each of the recipe's metrics as ``metrics/eval/<name>``, as Lightning logs
    ``eval/<name>``."""

    def __init__(self, task: Task, config: DictConfig) -> None:
        super().__init__()
        self.task = task
        self.model = task.build_model(config.model)

    def forward(self, batch: Any) -> tuple[torch.Tensor, Mapping[str, MetricValue]]:
        return step(self.task, self.model, batch)

    def loss(self, outputs: Any, batch: Any) -> torch.Tensor:
        return outputs[0]  # type: ignore[no-any-return]

    def eval_forward(self, batch: Any, outputs: Any | None = None) -> Any:
        return outputs if outputs is not None else self(batch)

    def get_metrics(self, is_train: bool = False) -> dict[str, Metric]:
        if is_train:
            return {}  # training logs its loss each batch; metrics cost only at evaluation
        return {name: RecipeMetric(name) for name in ("loss", *self.task.metric_names)}

    def update_metric(self, batch: Any, outputs: Any, metric: Metric) -> None:
        loss, metrics = outputs
        name = getattr(metric, "recipe_name", None)
        value = loss if name == "loss" else metrics.get(name)
        if value is not None:  # absent from this batch (COCO's box metrics without boxes)
            samples = (self.task.batch_samples or first_dimension)(batch)
            metric.update(value, samples)


def _loader_kwargs(task: Task) -> dict[str, Any]:
    return {} if task.collate is None else {"collate_fn": task.collate}


def _duration(config: DictConfig) -> str:
    steps = int(config.trainer.max_steps)
    return f"{steps}ba" if steps > 0 else f"{int(config.trainer.max_epochs)}ep"


def train(config: DictConfig, task: Task) -> Trainer:
    data = config.data
    dataset = task.dataset_class(**dataset_kwargs(config, data.train_split))
    train_spec = build_dataspec(
        dataset,
        data.batch_size,
        num_workers=data.num_workers,
        token_column=task.token_column,
        get_num_samples_in_batch=task.batch_samples or first_dimension,
        loader_kwargs=_loader_kwargs(task),
    )
    eval_spec = None
    if data.eval_split:
        # Each evaluation sample once (no repeats to fill whole batches), as Lightning's.
        eval_dataset = task.dataset_class(
            **dataset_kwargs(config, data.eval_split) | {"shuffle": False, "whole_batches": False}
        )
        eval_spec = build_dataspec(
            eval_dataset,
            data.batch_size,
            num_workers=data.num_workers,
            get_num_samples_in_batch=task.batch_samples or first_dimension,
            loader_kwargs=_loader_kwargs(task),
        )
    model = RecipeModel(task, config)
    steps = int(config.trainer.max_steps)
    total = steps if steps > 0 else len(train_spec.dataloader) * int(config.trainer.max_epochs)
    optimizer, schedule = build_optimizer(model.parameters(), config, total)
    accelerator = str(config.trainer.accelerator)
    device = (
        "gpu"
        if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
        else "cpu"
    )
    trainer = Trainer(
        model=model,
        train_dataloader=train_spec,
        eval_dataloader=eval_spec,
        max_duration=_duration(config),
        optimizers=optimizer,
        schedulers=schedule,
        step_schedulers_every_batch=True,
        device=device,
        seed=int(config.trainer.seed),
        run_name=config.run_name,
        save_folder=os.path.join(config.checkpoint.dir, "{run_name}"),
        save_interval=f"{int(config.checkpoint.every_n_steps)}ba",
        save_overwrite=True,
        autoresume=bool(config.checkpoint.resume),
        callbacks=[StreamingMonitor()],
        progress_bar=bool(config.trainer.progress_bar),
        log_to_console=not bool(config.trainer.progress_bar),
        console_log_interval=f"{int(config.trainer.log_every_n_steps)}ba",
    )
    trainer.fit()
    return trainer
