"""``train.py``'s configuration: a YAML file merged with ``dotted.key=value`` overrides, checked
against a structured schema, so a misspelt key or a missing required value stops the run
before anything starts — with the valid keys listed.

The schema is the same for every recipe except ``model:``, which is the recipe's own dataclass
(``Task.model_config``), and ``data.options``, which passes extra arguments to the recipe's
dataset class (e.g. ``augment``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, MissingMandatoryValue, OmegaConfBaseException

from recipes.common.task import Task, load_task
from streaming_lightning.errors import ConfigError


@dataclass
class StreamConfig:
    """One stream of a mixture (``data.streams``)."""

    remote: str | None = None
    local: str | None = None
    split: str | None = None
    proportion: float | None = None
    repeat: float | None = None
    choose: int | None = None


@dataclass
class DataConfig:
    #: Where the MDS dataset is (s3://, gs://, oci://, azure://, or a directory that plays the
    #: remote); required unless ``streams`` is given.
    remote: str | None = None
    #: Local cache directory; null: one per remote, scoped by user.
    local: str | None = None
    train_split: str | None = "train"
    #: Split evaluated each epoch; null: no evaluation.
    eval_split: str | None = None
    #: Per-device batch size.
    batch_size: int = 128
    num_workers: int = 2
    shuffle: bool = True
    shuffle_seed: int = 9176
    shuffle_algo: str = "py1e"
    num_canonical_nodes: int | None = None
    cache_limit: str | None = None
    predownload: int | None = None
    #: Mix several datasets: each a StreamConfig; replaces remote/local.
    streams: list[StreamConfig] | None = None
    #: Extra arguments for the recipe's dataset class (e.g. augment: false).
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimizerConfig:
    #: sgd or adamw.
    name: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5.0e-4
    #: Linear warmup steps, then cosine decay to 0 over the run (0: constant rate).
    warmup_steps: int = 0


@dataclass
class TrainerConfig:
    #: lightning or composer (composer needs the composer extra and its torch).
    kind: str = "lightning"
    accelerator: str = "auto"
    devices: Any = 1
    num_nodes: int = 1
    strategy: str = "auto"
    max_epochs: int = 1
    #: Stop after this many optimizer steps (-1: run max_epochs).
    max_steps: int = -1
    precision: str = "32-true"
    seed: int = 17
    log_every_n_steps: int = 10
    progress_bar: bool = True


@dataclass
class CheckpointConfig:
    dir: str = "checkpoints"
    #: Save every this many optimizer steps (and at every epoch end).
    every_n_steps: int = 100
    #: Continue from the last checkpoint in ``dir`` when there is one (mid-epoch, exactly).
    resume: bool = True


@dataclass
class Config:
    recipe: str = MISSING
    run_name: str = MISSING
    data: DataConfig = field(default_factory=DataConfig)
    model: Any = None
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)


TRAINERS = ("lightning", "composer")
OPTIMIZERS = ("sgd", "adamw")


def load_config(path: str, overrides: list[str]) -> tuple[DictConfig, Task]:
    """The run's configuration (file, then overrides) checked against the schema."""
    try:
        raw = OmegaConf.merge(OmegaConf.load(path), OmegaConf.from_dotlist(overrides))
    except FileNotFoundError:
        raise ConfigError(f"No config file {path}.") from None
    except OmegaConfBaseException as err:
        raise ConfigError(f"{path}: {err}") from None
    if not isinstance(raw, DictConfig):
        raise ConfigError(
            f"{path}: the config must be a mapping of sections (recipe:, data:, ...)."
        )
    recipe = raw.get("recipe")
    if not isinstance(recipe, str):
        raise ConfigError(f"{path}: set recipe: to one of the recipes (cifar10, c4, ...).")
    task = load_task(recipe)
    schema = OmegaConf.structured(Config)
    schema.model = OmegaConf.structured(task.model_config)
    try:
        config = OmegaConf.merge(schema, raw)
        assert isinstance(config, DictConfig)
        _check_required(config)
    except ConfigKeyError as err:
        raise ConfigError(_unknown_key_message(err, config_paths(task))) from None
    except MissingMandatoryValue as err:
        raise ConfigError(
            f"Missing required value {err.full_key} (set it in the YAML or as {err.full_key}=...)."
        ) from None
    except OmegaConfBaseException as err:
        raise ConfigError(f"Invalid configuration: {err}") from None
    _check_values(config)
    return config, task


def _check_required(config: DictConfig) -> None:
    for key in ("recipe", "run_name"):
        OmegaConf.select(config, key, throw_on_missing=True)


def _check_values(config: DictConfig) -> None:
    if config.trainer.kind not in TRAINERS:
        raise ConfigError(f"trainer.kind must be one of {TRAINERS}, got {config.trainer.kind!r}.")
    if config.optimizer.name not in OPTIMIZERS:
        raise ConfigError(
            f"optimizer.name must be one of {OPTIMIZERS}, got {config.optimizer.name!r}."
        )
    if config.data.remote is None and not config.data.streams:
        raise ConfigError("Set data.remote (or data.streams): where the MDS dataset is.")
    if config.data.batch_size < 1:
        raise ConfigError(f"data.batch_size must be >= 1, got {config.data.batch_size}.")
    if config.checkpoint.every_n_steps < 1:
        raise ConfigError("checkpoint.every_n_steps must be >= 1.")


def config_paths(task: Task) -> list[str]:
    """Every valid dotted key, for error messages."""
    paths: list[str] = []

    def walk(cls: type, prefix: str) -> None:
        for item in dataclasses.fields(cls):
            key = f"{prefix}{item.name}"
            nested = (
                item.default_factory if item.default_factory is not dataclasses.MISSING else None
            )
            if isinstance(nested, type) and dataclasses.is_dataclass(nested):
                walk(nested, key + ".")
            elif item.name == "model":
                walk(task.model_config, "model.")
            else:
                paths.append(key)

    walk(Config, "")
    return paths


def _unknown_key_message(err: ConfigKeyError, valid: list[str]) -> str:
    key = err.full_key or str(err.key)
    section = key.rsplit(".", 1)[0] + "." if "." in key else ""
    nearby = [path for path in valid if path.startswith(section)] or valid
    return (
        f"Unknown config key {key!r}. Valid keys{' in ' + section[:-1] if section else ''}: "
        + ", ".join(nearby)
    )


def dataset_kwargs(config: DictConfig, split: str | None) -> dict[str, Any]:
    """The dataset class's arguments for one split."""
    data = config.data
    kwargs: dict[str, Any] = {
        "shuffle": data.shuffle,
        "shuffle_seed": data.shuffle_seed,
        "shuffle_algo": data.shuffle_algo,
        "num_canonical_nodes": data.num_canonical_nodes,
        "cache_limit": data.cache_limit,
        "predownload": data.predownload,
        "batch_size": data.batch_size,
    }
    if data.streams:
        kwargs["streams"] = [_stream_kwargs(stream, split) for stream in data.streams]
    else:
        kwargs.update(remote=data.remote, local=data.local, split=split)
    options = OmegaConf.to_container(data.options, resolve=True)
    assert isinstance(options, dict)
    kwargs.update({str(key): value for key, value in options.items()})
    return kwargs


def _stream_kwargs(stream: DictConfig, split: str | None) -> dict[str, Any]:
    """One mixture stream's Stream arguments; a stream without its own split takes the run's."""
    values = OmegaConf.to_container(stream, resolve=True)
    assert isinstance(values, dict)
    kwargs = {str(key): value for key, value in values.items() if value is not None}
    if stream.split is None and split:
        kwargs["split"] = split
    return kwargs
