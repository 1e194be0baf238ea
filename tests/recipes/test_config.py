"""train.py's configuration: schema checks with clear errors, and what datasets receive."""

from __future__ import annotations

from pathlib import Path

import pytest

from recipes.common.config import dataset_kwargs, load_config
from streaming_lightning.errors import ConfigError

YAML = Path(__file__).resolve().parents[2] / "yamls" / "cifar10.yaml"


def test_overrides_merge_and_types_are_checked() -> None:
    config, task = load_config(str(YAML), ["data.remote=/d", "model.width=4", "data.batch_size=7"])
    assert task.name == "cifar10" and config.model.width == 4 and config.data.batch_size == 7
    with pytest.raises(ConfigError, match="width"):
        load_config(str(YAML), ["data.remote=/d", "model.width=wide"])


def test_unknown_keys_list_the_valid_ones_of_their_section() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(str(YAML), ["data.remote=/d", "optimizer.learning_rate=0.1"])
    message = str(err.value)
    assert "optimizer.learning_rate" in message and "optimizer.lr" in message
    assert "data.remote" not in message  # only the section's keys
    with pytest.raises(ConfigError, match="model.blocks"):
        load_config(str(YAML), ["data.remote=/d", "model.depth=3"])


def test_missing_and_invalid_values_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data\.remote"):
        load_config(str(YAML), [])
    with pytest.raises(ConfigError, match="No config file"):
        load_config(str(tmp_path / "nope.yaml"), [])
    bad = tmp_path / "bad.yaml"
    bad.write_text("recipe: mnist\nrun_name: x\n")
    with pytest.raises(ConfigError, match="cifar10"):
        load_config(str(bad), [])
    with pytest.raises(ConfigError, match="optimizer.name"):
        load_config(str(YAML), ["data.remote=/d", "optimizer.name=lion"])


def test_dataset_kwargs_for_one_remote_and_for_a_mixture(tmp_path: Path) -> None:
    config, _ = load_config(
        str(YAML), ["data.remote=s3://b/c", "data.cache_limit=1gb", "data.options.augment=false"]
    )
    kwargs = dataset_kwargs(config, "train")
    assert kwargs["remote"] == "s3://b/c" and kwargs["split"] == "train"
    assert kwargs["cache_limit"] == "1gb" and kwargs["augment"] is False
    assert kwargs["batch_size"] == 128 and kwargs["shuffle"] is True
    mix = tmp_path / "mix.yaml"
    mix.write_text(
        "recipe: cifar10\nrun_name: mix\ndata:\n  streams:\n"
        "    - {remote: s3://b/one, proportion: 0.75}\n"
        "    - {remote: s3://b/two, split: other, proportion: 0.25}\n"
    )
    config, _ = load_config(str(mix), [])
    kwargs = dataset_kwargs(config, "train")
    assert "remote" not in kwargs
    assert kwargs["streams"] == [
        {"remote": "s3://b/one", "proportion": 0.75, "split": "train"},
        {"remote": "s3://b/two", "split": "other", "proportion": 0.25},
    ]


@pytest.mark.parametrize("path", sorted((YAML.parent).glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_yaml_passes_the_schema(path: Path) -> None:
    config, task = load_config(str(path), ["data.remote=/data/x"])
    assert task.name == config.recipe
    if "multinode" in path.name:
        assert config.trainer.num_nodes > 1 and config.data.num_canonical_nodes is not None


def test_a_recipe_step_refuses_a_metric_its_task_does_not_declare() -> None:
    """Composer evaluates only the metrics a Task declares, so an undeclared one would vanish
    from Composer runs while Lightning logs it: refuse it under both."""
    from dataclasses import replace

    import torch

    from recipes.common.task import load_task, step

    task = load_task("cifar10")
    model = task.build_model(task.model_config())
    batch = (torch.zeros(2, 3, 32, 32), torch.zeros(2, dtype=torch.long))
    loss, metrics = step(task, model, batch)
    assert set(metrics) == set(task.metric_names) == {"accuracy"} and loss.ndim == 0
    with pytest.raises(ConfigError, match=r"reported the metrics \['accuracy'\]"):
        step(replace(task, metric_names=()), model, batch)
