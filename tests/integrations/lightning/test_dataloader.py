"""StreamingDataLoader, StreamingDataModule and the package import, without a Trainer.

The loader counts what it handed out in the main process; these tests consume batches the way
a training loop does (``next()`` on the iterator, never running it to StopIteration unless the
test says so) and check that the saved position continues exactly on a fresh loader.
"""

from __future__ import annotations

import subprocess
import sys
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from streaming_lightning import Stream, StreamingDataset
from streaming_lightning.errors import ConfigError
from streaming_lightning.integrations.lightning import (
    StreamingDataLoader,
    StreamingDataModule,
)
from streaming_lightning.integrations.lightning.dataloader import _WorkerWorld
from tests.integrations.lightning.helpers import BATCH, ROOT, SEED, write_dataset

STEPS = 26


def make_loader(data: str, batch: int = BATCH, **kwargs: Any) -> StreamingDataLoader:
    dataset = StreamingDataset(local=data, shuffle=True, shuffle_seed=SEED, batch_size=batch)
    return StreamingDataLoader(dataset, batch_size=batch, **kwargs)


def take(iterator: Any, count: int) -> list[list[int]]:
    return [batch["id"].tolist() for batch in islice(iterator, count)]


@pytest.mark.parametrize("workers", [0, 2])
def test_position_after_k_batches_continues_on_a_fresh_loader(
    data: str, order: list[list[list[int]]], workers: int
) -> None:
    loader = make_loader(data, num_workers=workers)
    assert take(iter(loader), 9) == order[0][:9]
    state = loader.state_dict()
    assert (state["epoch"], state["sample_in_epoch"]) == (0, 9 * BATCH)

    fresh = make_loader(data, num_workers=workers)
    fresh.load_state_dict(state)
    assert fresh.state_dict() == state  # held until the next iteration starts
    assert [b["id"].tolist() for b in fresh] == order[0][9:]
    assert fresh.state_dict()["epoch"] == 1 and fresh.state_dict()["sample_in_epoch"] == 0
    assert [b["id"].tolist() for b in fresh] == order[1]


def test_resumed_twice_counts_from_the_epoch_start(data: str, order: list[list[list[int]]]) -> None:
    first = make_loader(data)
    take(iter(first), 5)
    second = make_loader(data)
    second.load_state_dict(first.state_dict())
    assert take(iter(second), 4) == order[0][5:9]
    assert second.state_dict()["sample_in_epoch"] == 9 * BATCH
    third = make_loader(data)
    third.load_state_dict(second.state_dict())
    assert take(iter(third), 2) == order[0][9:11]


def test_consuming_exactly_len_batches_ends_the_epoch(
    data: str, order: list[list[list[int]]]
) -> None:
    """Lightning stops after len() batches without asking for StopIteration: the position is
    then the start of the next epoch, not the end of this one."""
    loader = make_loader(data)
    assert len(loader) == STEPS
    iterator = iter(loader)
    take(iterator, STEPS)
    state = loader.state_dict()
    assert (state["epoch"], state["sample_in_epoch"]) == (1, 0)
    fresh = make_loader(data)
    fresh.load_state_dict(state)
    assert take(iter(fresh), 2) == order[1][:2]


def test_a_position_loaded_after_iter_applies_at_the_first_batch(
    data: str, order: list[list[list[int]]]
) -> None:
    """Lightning #20550 builds the iterator before the restore: nothing starts until next()."""
    saved = make_loader(data)
    take(iter(saved), 7)
    loader = make_loader(data, num_workers=2)
    iterator = iter(loader)
    loader.load_state_dict(saved.state_dict())
    assert take(iterator, 2) == order[0][7:9]


def test_a_later_epoch_drops_an_earlier_position(data: str, order: list[list[list[int]]]) -> None:
    """set_epoch (what Lightning calls before each epoch) past the saved epoch: the trainer has
    moved on (an epoch cut short by limit_train_batches), so the new epoch starts at 0."""
    saved = make_loader(data)
    take(iter(saved), 7)
    loader = make_loader(data)
    loader.load_state_dict(saved.state_dict())
    loader.sampler.set_epoch(1)  # type: ignore[attr-defined]
    assert take(iter(loader), 2) == order[1][:2]
    epochs = iter([2])
    source = make_loader(data, epoch_source=lambda: next(epochs))
    assert take(iter(source), 1) == order[2][:1]


def test_epochs_follow_each_other(data: str, order: list[list[list[int]]]) -> None:
    loader = make_loader(data)
    assert [[b["id"].tolist() for b in loader] for _ in range(3)] == order[:3]


def test_persistent_workers_follow_epochs_and_positions(
    data: str, order: list[list[list[int]]]
) -> None:
    """Persistent workers begin every epoch from the shared epoch state the loader sets: an
    epoch cut short, the next one whole, then a loaded position."""
    loader = make_loader(data, num_workers=2, persistent_workers=True)
    assert take(iter(loader), 5) == order[0][:5]
    assert [b["id"].tolist() for b in loader] == order[1]
    saved = make_loader(data)
    take(iter(saved), 3)
    loader.load_state_dict(saved.state_dict())
    assert take(iter(loader), 2) == order[0][3:5]


def test_the_position_is_global_and_resumes_on_another_world(
    data: str, order: list[list[list[int]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rank 0 of 2 with batch 4 after 6 batches: 6 global batches of 8 are consumed; one
    process with batch 8 continues with global batch 6."""
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    rank0 = make_loader(data, batch=BATCH // 2)
    assert len(rank0) == STEPS
    assert take(iter(rank0), 6) == [batch[: BATCH // 2] for batch in order[0][:6]]
    state = rank0.state_dict()
    assert state["sample_in_epoch"] == 6 * BATCH and state["global_batch_size"] == BATCH
    monkeypatch.setenv("WORLD_SIZE", "1")
    single = make_loader(data)
    single.load_state_dict(state)
    assert [b["id"].tolist() for b in single] == order[0][6:]


def test_checks(data: str, tmp_path: Path) -> None:
    dataset = StreamingDataset(local=data, batch_size=4)
    with pytest.raises(ConfigError, match=r"batch_size=8 differs .* batch_size=4"):
        StreamingDataLoader(dataset, batch_size=8)
    with pytest.raises(ConfigError, match="reads a StreamingDataset"):
        StreamingDataLoader([1, 2, 3], batch_size=8)  # type: ignore[arg-type]
    unsized = StreamingDataset(local=data)
    StreamingDataLoader(unsized, batch_size=8)
    assert unsized.batch_size == 8, "the plan needs the per-device batch"
    other = write_dataset(tmp_path / "other", samples=40)
    with pytest.raises(ConfigError, match=r"203 samples in .* 40 samples in"):
        make_loader(other).load_state_dict(make_loader(data).state_dict())
    state = make_loader(data).state_dict()
    with pytest.raises(ConfigError, match="global batch size of 8; .* is 4"):
        make_loader(data, batch=4).load_state_dict(state)
    with pytest.raises(ConfigError, match="Not a streaming data position"):
        make_loader(data).load_state_dict({"epoch": 1})


def test_worker_world_is_exported_to_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a spawned or forkserver worker gets instead of the rank's process group."""
    from streaming_lightning.dataset import World, detect_world

    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.setenv(name, "")  # restored (or removed) after the test
        monkeypatch.delenv(name)
    seen: list[int] = []
    _WorkerWorld(World(3, 4, 1, 2), seen.append)(5)
    assert seen == [5]
    world = detect_world()
    assert (world.rank, world.world_size, world.local_rank, world.num_nodes) == (3, 4, 1, 2)


@pytest.mark.parametrize("context", ["spawn", "forkserver"])
def test_spawned_workers(data: str, order: list[list[list[int]]], context: str) -> None:
    """A StreamingDataset pickles into spawned workers (maps, locks and the cache handle are
    made again there) and they read the planned order (Python 3.14's default start method)."""
    loader = make_loader(data, num_workers=2, multiprocessing_context=context)
    assert take(iter(loader), 3) == order[0][:3]


# ---------------------------------------------------------------------- StreamingDataModule


def test_datamodule_builds_each_kind_of_config(data: str, tmp_path: Path) -> None:
    other = write_dataset(tmp_path / "other", samples=40, first_id=1000)
    ready = StreamingDataset(local=data)
    module = StreamingDataModule(
        train={"local": data, "shuffle": True},
        val=OmegaConf.create({"streams": [{"local": data}, {"local": other}]}),
        test={"streams": [Stream(local=other)], "batch_size": 4},
        predict=ready,
        batch_size=BATCH,
    )
    module.setup("fit")
    assert set(module.datasets) == {"train", "val"}
    assert module.datasets["val"].size == 243
    assert module.train_dataloader().batch_size == BATCH
    assert module.test_dataloader().batch_size == 4, "a split's own batch_size wins"
    predict = module.predict_dataloader()
    assert predict.streaming_dataset is ready and ready.batch_size == BATCH
    assert predict.dataset.state_dict(0, True) == ready.state_dict(0, True)
    with pytest.raises(ConfigError, match="Invalid train dataset config"):
        StreamingDataModule(train={"local": data, "colour": 1}, batch_size=2).setup("fit")
    with pytest.raises(ConfigError, match="no val dataset"):
        StreamingDataModule(train={"local": data}, batch_size=2).val_dataloader()
    with pytest.raises(ConfigError, match="must be a StreamingDataset, a dict"):
        StreamingDataModule(train=[data], batch_size=2).setup("fit")


def test_datamodule_holds_a_position_for_the_next_train_loader(
    data: str, order: list[list[list[int]]]
) -> None:
    split = {"local": data, "shuffle": True, "shuffle_seed": SEED}
    first = StreamingDataModule(train=split, batch_size=BATCH)
    first.setup("fit")
    take(iter(first.train_dataloader()), 4)
    state = first.state_dict()
    assert state["train"]["sample_in_epoch"] == 4 * BATCH

    second = StreamingDataModule(train=split, batch_size=BATCH)
    second.setup("fit")
    second.load_state_dict(state)  # restored before any loader exists
    assert second.state_dict() == state
    assert take(iter(second.train_dataloader()), 2) == order[0][4:6]


def test_importing_the_package_does_not_import_lightning() -> None:
    code = "import sys, streaming_lightning; assert 'lightning' not in sys.modules, 'imported'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_missing_lightning_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['lightning'] = None\n"
        "from streaming_lightning.errors import MissingExtraError\n"
        "try:\n"
        "    import streaming_lightning.integrations.lightning\n"
        "except MissingExtraError as error:\n"
        "    print(error)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "pip install 'streaming-lightning[lightning]'" in proc.stdout, proc.stdout
