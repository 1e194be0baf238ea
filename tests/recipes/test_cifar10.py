"""CIFAR10 recipe: raw python batches → MDS → augmented tensors → a few training steps."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from recipes.cifar10 import StreamingCIFAR10
from recipes.cifar10.convert import convert, read_batch
from recipes.cifar10.fixtures import write_raw
from recipes.common.convert import WriteOptions
from streaming_lightning import StreamingDataset
from streaming_lightning.errors import ConfigError
from tests.recipes.helpers import check_trains_and_resumes, run_train, train_args

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_raw(str(tmp_path_factory.mktemp("cifar")), per_batch=40, test=30)


def _expected(raw: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    pairs = [read_batch(os.path.join(raw, name)) for name in names]
    return np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])


@pytest.mark.parametrize("image_format", ["raw", "png"])
def test_convert_keeps_every_image_and_label_in_order(
    raw: str, tmp_path: Path, image_format: str
) -> None:
    out = convert(raw, WriteOptions(out=str(tmp_path / "mds"), progress=False), image_format)
    assert set(out) == {"train", "test"}
    for split in ("train", "test"):
        images, labels = _expected(raw, split)
        dataset = StreamingDataset(local=str(tmp_path / "mds"), split=split)
        assert dataset.size == len(labels)
        for i in (0, 1, len(labels) // 2, len(labels) - 1):
            sample = dataset[i]
            assert sample["y"] == labels[i]
            assert np.array_equal(np.asarray(sample["x"]), images[i])


def test_parallel_conversion_equals_serial_and_resumes(raw: str, tmp_path: Path) -> None:
    serial = tmp_path / "serial"
    convert(raw, WriteOptions(out=str(serial), progress=False))
    parallel = tmp_path / "parallel"
    # The converter's workers are spawned processes: run it as users do, from the CLI.
    cmd = [sys.executable, "-m", "recipes.cifar10", "convert", "--in", raw, "--out", str(parallel)]
    done = subprocess.run([*cmd, "--workers", "2", "--no-progress"], cwd=ROOT, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    a = StreamingDataset(local=str(serial), split="train")
    b = StreamingDataset(local=str(parallel), split="train")
    assert [a[i]["y"] for i in range(a.size)] == [b[i]["y"] for i in range(b.size)]
    # A finished conversion is never overwritten by accident...
    index = (parallel / "train" / "index.json").read_bytes()
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 0 and "already converted" in again.stderr, again.stderr
    assert (parallel / "train" / "index.json").read_bytes() == index
    # ...and an interrupted one resumes: parts with an index are kept, the rest redone.
    (parallel / "train" / "index.json").unlink()
    (parallel / "train" / "part-00003" / "index.json").unlink()
    kept = (parallel / "train" / "part-00001" / "index.json").stat().st_mtime_ns
    resumed = subprocess.run([*cmd, "--no-progress"], cwd=ROOT, capture_output=True)
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert (parallel / "train" / "part-00001" / "index.json").stat().st_mtime_ns == kept
    c = StreamingDataset(local=str(parallel), split="train")
    assert [c[i]["y"] for i in range(c.size)] == [a[i]["y"] for i in range(a.size)]
    forced = subprocess.run([*cmd, "--force", "--no-progress"], cwd=ROOT, capture_output=True)
    assert forced.returncode == 0


def test_bad_raw_input_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No CIFAR10 batches"):
        convert(str(tmp_path), WriteOptions(out=str(tmp_path / "o"), progress=False))
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(b"not a pickle")
    with pytest.raises(ConfigError, match="data_batch_1"):
        convert(str(tmp_path), WriteOptions(out=str(tmp_path / "o"), progress=False))
    with open(folder / "data_batch_1", "wb") as file:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, file)
    with pytest.raises(ConfigError, match="3072"):
        convert(str(tmp_path), WriteOptions(out=str(tmp_path / "o2"), progress=False))


def test_augmentation_is_seeded_by_epoch_and_index(raw: str, tmp_path: Path) -> None:
    convert(raw, WriteOptions(out=str(tmp_path / "mds"), progress=False), "png")
    train = StreamingCIFAR10(local=str(tmp_path / "mds"), split="train", shuffle=True)
    x, y = train[5]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and isinstance(y, int)
    assert torch.equal(train[5][0], x)  # same epoch and index: the same crop and flip
    assert any(
        not torch.equal(
            train[i][0],
            StreamingCIFAR10(local=str(tmp_path / "mds"), split="train", augment=False)[i][0],
        )
        for i in range(8)
    )
    train.__dict__["_iterating_epoch"] = 1
    assert any(
        not torch.equal(
            train[i][0], StreamingCIFAR10(local=str(tmp_path / "mds"), split="train")[i][0]
        )
        for i in range(8)
    )
    test = StreamingCIFAR10(local=str(tmp_path / "mds"), split="test")
    assert not test.augment
    images, _ = _expected(raw, "test")
    plain = (images[2].astype(np.float32) / 255 - np.array([0.4914, 0.4822, 0.4465])) / np.array(
        [0.2470, 0.2435, 0.2616]
    )
    assert np.allclose(test[2][0].numpy(), plain.transpose(2, 0, 1), atol=1e-5)


def _train(args: list[str]) -> subprocess.CompletedProcess[str]:
    return run_train("yamls/cifar10.yaml", args)


def test_train_py_trains_checkpoints_and_resumes(raw: str, tmp_path: Path) -> None:
    convert(raw, WriteOptions(out=str(tmp_path / "mds"), compression="zstd", progress=False))
    args = [*train_args(tmp_path / "mds", tmp_path, batch_size=16), "model.width=8"]
    check_trains_and_resumes("yamls/cifar10.yaml", args, tmp_path)


def test_train_py_config_errors_are_clear() -> None:
    typo = _train(["data.remote=/nowhere", "trainer.max_stpes=3"])
    assert typo.returncode == 2 and "max_stpes" in typo.stderr and "max_steps" in typo.stderr
    assert "Traceback" not in typo.stderr
    missing = _train([])
    assert missing.returncode == 2 and "data.remote" in missing.stderr
    assert "Traceback" not in missing.stderr
    bad = _train(["data.remote=/x", "trainer.kind=keras"])
    assert bad.returncode == 2 and "lightning" in bad.stderr


def test_train_py_runs_ddp_through_lightnings_launcher(raw: str, tmp_path: Path) -> None:
    """trainer.devices=2 on CPU: Lightning starts the second process (no launcher of ours),
    each rank reads its half of every global batch, and the run checkpoints and resumes."""
    convert(raw, WriteOptions(out=str(tmp_path / "mds"), progress=False))
    args = [
        *train_args(tmp_path / "mds", tmp_path, batch_size=8),
        "model.width=4",
        "data.num_workers=0",
        "trainer.devices=2",
        "trainer.strategy=ddp",
    ]
    check_trains_and_resumes("yamls/cifar10.yaml", args, tmp_path, first=2, second=4)
