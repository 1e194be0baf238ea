"""build_dataspec and StreamingMonitor in process, with real Composer 0.32 objects."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from torch.utils.data import DataLoader

from streaming_lightning import MDSWriter, StreamingDataset
from streaming_lightning.errors import ConfigError
from tests.compat.composer.helpers import ROOT, write_dataset
from tests.conftest import require_peer

composer = require_peer("composer")

from streaming_lightning.integrations.composer import (  # noqa: E402
    CountTokens,
    DatasetMismatchError,
    StreamingMonitor,
    build_dataspec,
)
from tests.compat.composer.train_run import Tiny  # noqa: E402


def write_tokens(out: Path, samples: int, first: int = 0) -> str:
    with MDSWriter(out=str(out), columns={"id": "int", "tokens": "ndarray:int32:8"}) as writer:
        for i in range(first, first + samples):
            writer.write({"id": i, "tokens": np.arange(8, dtype=np.int32) + i})
    return str(out)


def batches(loader: Any) -> list[dict[str, Any]]:
    return [dict(batch) for batch in loader]


def test_importing_the_package_imports_no_trainer() -> None:
    code = (
        "import sys, streaming_lightning; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('composer', 'lightning')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_config_with_streams_num_samples_and_tokens(tmp_path: Path) -> None:
    """A dict config with a mapping of streams (llm-foundry style): the DataSpec counts the
    epoch across ranks (padding included), samples and tokens per batch, and its loader gives
    DataLoader(dataset, batch_size)'s batches."""
    first, second = write_tokens(tmp_path / "a", 30), write_tokens(tmp_path / "b", 11, first=100)
    config = {
        "streams": {"a": {"local": first}, "b": {"local": second, "repeat": 2}},
        "shuffle": True,
        "shuffle_seed": 3,
    }
    spec = build_dataspec(config, 4, token_column="tokens")
    assert isinstance(spec, composer.core.DataSpec)
    assert spec.num_samples == 52  # 30 + 2 x 11 samples, no padding needed for batches of 4
    assert spec.dataloader.batch_size == 4
    assert len(spec.dataloader) == 13
    got = batches(spec.dataloader)
    plain = StreamingDataset(
        streams=[*spec.dataloader.streaming_dataset.streams],
        shuffle=True,
        shuffle_seed=3,
        batch_size=4,
    )
    want = batches(DataLoader(plain, batch_size=4))
    assert [b["id"].tolist() for b in got] == [b["id"].tolist() for b in want]
    assert spec.get_num_samples_in_batch(got[0]) == 4
    assert spec.get_num_tokens_in_batch(got[0]) == 32
    assert CountTokens("tokens")({"tokens": [[1, 2, 3], [4]]}) == 4
    with pytest.raises(ConfigError, match="token_column='ids'"):
        CountTokens("ids")(got[0])


def test_omegaconf_config_and_padding(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    data = write_dataset(tmp_path / "ds", samples=61)
    config = OmegaConf.create({"streams": [{"local": data}], "batch_size": 4})
    spec = build_dataspec(config, num_workers=0)
    assert spec.num_samples == 64  # 61 samples padded to whole global batches
    assert len(spec.dataloader) == 16


def test_batch_size_must_agree(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "ds", samples=20)
    with pytest.raises(ConfigError, match="batch_size=8"):
        build_dataspec(StreamingDataset(local=data, batch_size=8), 4)
    with pytest.raises(ConfigError, match="batch_size=8"):
        build_dataspec({"local": data, "batch_size": 8}, 4)
    with pytest.raises(ConfigError, match="per-device batch size"):
        build_dataspec({"local": data})
    with pytest.raises(ConfigError, match="do not pass it"):
        build_dataspec({"local": data}, 4, loader_kwargs={"batch_size": 4})


def test_monitor_logs_throughput_and_stall(tmp_path: Path) -> None:
    """Every batch arrives 20 ms late (a slow batch transform counts as loading): each window
    of 4 batches logs at least 80 ms of stall, and a throughput."""
    data = write_dataset(tmp_path / "ds", samples=32)

    def slow(batch: Any) -> Any:
        time.sleep(0.02)  # simulated loading time, not a wait for anything
        return batch

    spec = build_dataspec({"local": data}, 4, batch_transforms=slow)
    memory = composer.loggers.InMemoryLogger()
    trainer = composer.Trainer(
        model=Tiny(),
        train_dataloader=spec,
        max_duration="8ba",
        device="cpu",
        callbacks=[StreamingMonitor(log_interval=4)],
        loggers=[memory],
        progress_bar=False,
        log_to_console=False,
    )
    trainer.fit()
    stall = [value for _, value in memory.data["streaming/stall_seconds"]]
    fraction = [value for _, value in memory.data["streaming/stall_fraction"]]
    rate = [value for _, value in memory.data["streaming/samples_per_second"]]
    total = [value for _, value in memory.data["streaming/stall_seconds_total"]]
    assert len(stall) == len(rate) == 2
    assert all(s >= 0.08 for s in stall)
    assert all(0 < f <= 1 for f in fraction)
    assert all(r > 0 for r in rate)
    assert total[-1] == pytest.approx(sum(stall))


def test_checkpoint_of_other_data_is_refused_naming_both(tmp_path: Path) -> None:
    first = StreamingDataset(local=write_dataset(tmp_path / "a", samples=20), batch_size=4)
    other = write_dataset(tmp_path / "b", samples=21)
    view = build_dataspec({"local": other}, 4).dataloader.dataset
    saved = first.state_dict(8, True)
    with pytest.raises(DatasetMismatchError) as error:
        view.load_state_dict(saved)
    message = str(error.value)
    assert first.fingerprint() in message and view.dataset.fingerprint() in message
    assert other in message
    with pytest.raises(DatasetMismatchError, match="holds no train data position"):
        view.load_state_dict(None)
    view.load_state_dict(StreamingDataset(local=other, batch_size=4).state_dict(8, True))
    assert view.dataset.state_dict(0, False)["sample_in_epoch"] == 8
