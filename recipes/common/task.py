"""What ``train.py`` needs from a recipe, and where each recipe's lives.

A recipe module ``recipes.<name>.task`` defines ``TASK``: its dataset class, the structured
config of its model, how to build the model and how a batch becomes a loss. Everything else
(trainers, checkpoints, resume, loaders) is shared, so every recipe trains the same way.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from recipes.common.metrics import MetricValue
from streaming_lightning import StreamingDataset
from streaming_lightning.errors import ConfigError

#: Recipes ``train.py`` knows (module ``recipes.<name>.task`` defines ``TASK``).
RECIPES = ("cifar10", "c4", "imagenet", "laion", "webvid", "enwiki", "pile", "ade20k", "coco")


@dataclass(frozen=True)
class Task:
    name: str
    #: The StreamingDataset subclass that decodes and augments this recipe's samples.
    dataset_class: type[StreamingDataset]
    #: A dataclass of the model's options: the ``model:`` section of the YAML.
    model_config: type
    build_model: Callable[[Any], nn.Module]
    #: (model, batch) → (loss, {metric name: value}) for one device batch; a value is a
    #: scalar (a split averages them by samples) or :class:`~recipes.common.metrics.Summed`.
    loss: Callable[[nn.Module, Any], tuple[torch.Tensor, Mapping[str, MetricValue]]]
    #: Every name ``loss`` may report (a batch may leave some out: COCO's box metrics in a
    #: batch without boxes). Composer wants its evaluation metrics before the first batch.
    metric_names: tuple[str, ...] = ()
    #: Samples in a device batch (Composer counts them); default: the first tensor's rows.
    batch_samples: Callable[[Any], int] | None = None
    #: Dataset column Composer counts tokens of (language recipes), or None.
    token_column: str | None = None
    #: Builds a batch from a list of samples, for recipes whose samples do not stack (COCO's
    #: variable box counts); None: the loader's packed batches (default_collate's values).
    collate: Callable[[list[Any]], Any] | None = None


def load_task(name: str) -> Task:
    if name not in RECIPES:
        raise ConfigError(f"Unknown recipe {name!r}; choose one of {', '.join(RECIPES)}.")
    try:
        module = importlib.import_module(f"recipes.{name}.task")
    except ModuleNotFoundError as err:
        if err.name and err.name.startswith(f"recipes.{name}"):
            raise ConfigError(f"Recipe {name!r} has no training task yet.") from None
        raise
    task = module.TASK
    assert isinstance(task, Task)
    return task


def step(
    task: Task, model: nn.Module, batch: Any
) -> tuple[torch.Tensor, Mapping[str, MetricValue]]:
    """``task.loss`` on one batch, refusing a metric its ``metric_names`` does not list (an
    undeclared name would be logged by Lightning but silently missing under Composer)."""
    loss, metrics = task.loss(model, batch)
    unknown = metrics.keys() - set(task.metric_names)
    if unknown:
        raise ConfigError(
            f"Recipe {task.name!r} reported the metrics {sorted(unknown)}, which its Task's "
            f"metric_names {task.metric_names} does not list: add them there."
        )
    return loss, metrics


def first_dimension(batch: Any) -> int:
    """Rows of the first tensor in a batch (tuple, list or dict)."""
    values = batch.values() if isinstance(batch, dict) else batch
    for value in values:
        if isinstance(value, torch.Tensor):
            return int(value.shape[0])
        if isinstance(value, list):
            return len(value)
    raise ValueError("Cannot count the samples of a batch without tensors or lists.")
