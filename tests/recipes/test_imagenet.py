"""ImageNet recipe: class folders of JPEGs → MDS (bytes unchanged) → augmented tensors → a few
training steps."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from recipes.common.config import load_config
from recipes.common.convert import WriteOptions
from recipes.imagenet import StreamingImageNet
from recipes.imagenet.convert import convert, part_sizes
from recipes.imagenet.fixtures import synthetic_image, write_raw
from recipes.imagenet.task import TASK
from recipes.imagenet.transforms import (
    MEAN,
    STD,
    center_crop_box,
    eval_transform,
    random_resized_crop_box,
    resized_shape,
    to_tensor,
    train_transform,
)
from streaming_lightning import LocalDataset
from streaming_lightning.errors import ConfigError
from tests.recipes.helpers import check_trains_and_resumes, train_args

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_raw(str(tmp_path_factory.mktemp("imagenet") / "raw"))


@pytest.fixture(scope="module")
def mds(raw: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    out = str(tmp_path_factory.mktemp("imagenet-mds"))
    convert(raw, WriteOptions(out=out, progress=False))
    return out


def _options(out: Path | str) -> WriteOptions:
    return WriteOptions(out=str(out), progress=False)


def _sources(raw: str, split: str) -> list[tuple[Path, int]]:
    """Every raw file of a split with its expected label, in the order samples must have."""
    classes = sorted(os.listdir(os.path.join(raw, "train")))
    folder = Path(raw, split)
    return [
        (path, classes.index(wnid))
        for wnid in sorted(os.listdir(folder))
        for path in sorted((folder / wnid).iterdir())
    ]


def _stored(root: str, split: str) -> list[bytes]:
    """Each sample's stored bytes (the MDS sample record: column sizes, then the values)."""
    dataset = LocalDataset(root, split)
    records = []
    for i in range(len(dataset)):
        shard, local = dataset.locate(i)
        records.append(dataset.shards[shard].get_sample_data(local))
    return records


def test_convert_stores_every_file_unchanged_with_its_class(raw: str, mds: str) -> None:
    for split in ("train", "val"):
        sources = _sources(raw, split)
        dataset = LocalDataset(mds, split)
        assert len(dataset) == len(sources)
        for i, ((path, label), record) in enumerate(zip(sources, _stored(mds, split))):
            jpeg = path.read_bytes()
            # The whole file, not re-encoded: the record is its size (4 bytes), it, and y.
            assert len(record) == 4 + len(jpeg) + 8 and jpeg in record, path
            assert dataset[i]["y"] == label, path
    classes = json.loads(Path(mds, "classes.json").read_text())
    assert classes == sorted(os.listdir(os.path.join(raw, "train")))
    assert len(classes) == 3 and all(name.startswith("n") for name in classes)


def test_parts_are_balanced_runs_of_files() -> None:
    assert part_sizes(0) == []
    assert part_sizes(5) == [1] * 5
    assert part_sizes(50_000) == [782] * 16 + [781] * 48  # ImageNet val: 64 parts
    imagenet_train = part_sizes(1_281_167)
    assert sum(imagenet_train) == 1_281_167 and max(imagenet_train) <= 1024
    assert max(imagenet_train) - min(imagenet_train) <= 1


def test_parallel_cli_conversion_equals_serial(raw: str, mds: str, tmp_path: Path) -> None:
    # The converter's workers are spawned processes: run it as users do, from the CLI.
    out = tmp_path / "parallel"
    cmd = [sys.executable, "-m", "recipes.imagenet", "convert", "--in", raw, "--out", str(out)]
    done = subprocess.run(
        [*cmd, "--workers", "2", "--no-progress"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert f"classes: {out / 'classes.json'}" in done.stdout
    for split in ("train", "val"):
        assert _stored(str(out), split) == _stored(mds, split)
    assert (out / "classes.json").read_bytes() == Path(mds, "classes.json").read_bytes()


def test_bad_files_and_layouts_are_named(raw: str, tmp_path: Path) -> None:
    bad = Path(write_raw(str(tmp_path / "bad"), classes=2, train_per_class=2, val_per_class=1))
    victim = next((bad / "train").glob("*/*_2.JPEG"))
    jpeg = victim.read_bytes()
    victim.write_bytes(jpeg[: len(jpeg) // 2])
    with pytest.raises(ConfigError, match=re.escape(f"{victim}: a corrupt or truncated JPEG")):
        convert(str(bad), _options(tmp_path / "o1"))
    Image.new("RGB", (20, 20)).save(victim, format="PNG")  # ImageNet has one of these
    with pytest.raises(ConfigError, match=re.escape(f"{victim}: a PNG image, not a JPEG")):
        convert(str(bad), _options(tmp_path / "o2"))
    victim.write_bytes(b"not an image")
    # From the CLI: one line naming the file, exit code 2, no traceback.
    cmd = [sys.executable, "-m", "recipes.imagenet", "convert", "--in", str(bad)]
    done = subprocess.run(
        [*cmd, "--out", str(tmp_path / "o3"), "--no-progress"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and str(victim) in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    victim.write_bytes(jpeg)

    stray = bad / "val" / "n99999999"
    stray.mkdir()
    with pytest.raises(ConfigError, match="n99999999.*not a folder of"):
        convert(str(bad), _options(tmp_path / "o4"))
    stray.rmdir()
    (bad / "val" / "ILSVRC2012_val_00000001.JPEG").write_bytes(jpeg)  # the unsorted layout
    with pytest.raises(ConfigError, match="must hold only class folders"):
        convert(str(bad), _options(tmp_path / "o5"))
    with pytest.raises(ConfigError, match="train"):
        convert(str(tmp_path / "nothing-here"), _options(tmp_path / "o6"))
    # Another conversion's output is not relabelled by this one's classes.
    with pytest.raises(ConfigError, match="another class list"):
        convert(raw, _options(tmp_path / "o1"))


# ------------------------------------------------------------------------------- transforms


def test_random_resized_crop_box_stays_within_bounds() -> None:
    rng = np.random.default_rng(0)
    for width, height in [(500, 375), (375, 500), (64, 48), (1000, 120), (90, 900), (17, 13)]:
        for _ in range(300):
            left, top, w, h = random_resized_crop_box(width, height, rng)
            assert left >= 0 and top >= 0 and left + w <= width and top + h <= height
            # 8-100% of the area, aspect 3/4..4/3, up to the rounding of each side to pixels.
            assert (w - 0.5) * (h - 0.5) <= width * height <= (w + 0.5) * (h + 0.5) / 0.08
            assert (w - 0.5) / (h + 0.5) <= 4 / 3 and (w + 0.5) / (h - 0.5) >= 3 / 4
    # No box of 8% of these fits inside with an allowed aspect: after ten tries, the largest
    # central box of the nearest allowed aspect.
    assert random_resized_crop_box(400, 10, rng) == (193, 0, 13, 10)
    assert random_resized_crop_box(10, 400, rng) == (0, 193, 10, 13)
    # Seeded: the same generator state gives the same box.
    boxes = [random_resized_crop_box(500, 375, np.random.default_rng(7)) for _ in range(2)]
    assert boxes[0] == boxes[1]


def test_resize_and_center_crop_follow_torchvision() -> None:
    assert resized_shape(500, 375, 256) == (341, 256)
    assert resized_shape(375, 500, 256) == (256, 341)
    assert resized_shape(300, 300, 256) == (256, 256)
    assert center_crop_box(341, 256, 224) == (58, 16, 224, 224)


def _jpeg(tmp_path: Path, size: tuple[int, int], name: str = "a.JPEG") -> Path:
    path = tmp_path / name
    image = synthetic_image(1, 3, size, np.random.default_rng(0))
    Image.fromarray(image).save(path, format="JPEG", quality=95)
    return path


def test_train_transform_is_seeded_and_decodes_reduced_jpegs_correctly(tmp_path: Path) -> None:
    path = _jpeg(tmp_path, (400, 300))
    first = train_transform(Image.open(path), 32, np.random.default_rng(3))
    assert first.shape == (32, 32, 3) and first.dtype == np.uint8
    assert np.array_equal(first, train_transform(Image.open(path), 32, np.random.default_rng(3)))
    assert not np.array_equal(
        first, train_transform(Image.open(path), 32, np.random.default_rng(4))
    )
    # Draft mode (a 1/2-1/8 scale decode) must crop the same region as a full decode would.
    decoded = Image.open(path).convert("RGB")  # not a JPEG file any more: decoded in full
    for seed in range(5):
        reduced = train_transform(Image.open(path), 32, np.random.default_rng(seed))
        full = train_transform(decoded, 32, np.random.default_rng(seed))
        assert np.abs(reduced.astype(int) - full).mean() < 6, seed
    tensor = to_tensor(first)
    assert tensor.shape == (3, 32, 32) and tensor.dtype == torch.float32


def test_eval_transform_is_resize_then_center_crop(tmp_path: Path) -> None:
    path = _jpeg(tmp_path, (61, 45))
    out = eval_transform(Image.open(path), 36, 32)
    by_hand = Image.open(path).convert("RGB").resize((48, 36), Image.Resampling.BILINEAR)
    expected = np.asarray(by_hand)[2:34, 8:40]  # top round(4 / 2), left round(16 / 2)
    assert np.array_equal(out, expected)
    normalised = (expected.astype(np.float32) / 255 - MEAN) / STD
    assert np.allclose(to_tensor(out).numpy(), normalised.transpose(2, 0, 1), atol=1e-5)
    big = _jpeg(tmp_path, (500, 375), "big.JPEG")  # decoded in draft mode, still the same shape
    assert eval_transform(Image.open(big), 73, 64).shape == (64, 64, 3)


def test_dataset_augments_by_epoch_and_index(mds: str) -> None:
    train = StreamingImageNet(local=mds, split="train", crop_size=32, shuffle=True)
    x, y = train[5]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and isinstance(y, int)
    assert train.resize_size == 37  # 32 × 256/224
    assert torch.equal(train[5][0], x)  # same epoch and index: the same crop and flip
    plain = StreamingImageNet(local=mds, split="train", crop_size=32, augment=False)
    assert any(not torch.equal(train[i][0], plain[i][0]) for i in range(4))
    train.__dict__["_iterating_epoch"] = 1
    fresh = StreamingImageNet(local=mds, split="train", crop_size=32)
    assert any(not torch.equal(train[i][0], fresh[i][0]) for i in range(4))
    val = StreamingImageNet(local=mds, split="val", crop_size=32, resize_size=40)
    assert not val.augment and val[0][0].shape == (3, 32, 32)
    with pytest.raises(ConfigError, match="resize_size"):
        StreamingImageNet(local=mds, split="val", crop_size=64, resize_size=32)


# ------------------------------------------------------------------------------- train.py


def test_train_py_trains_checkpoints_and_resumes(mds: str, tmp_path: Path) -> None:
    args = [
        *train_args(mds, tmp_path, batch_size=8),
        "data.options.crop_size=32",
        "trainer.precision=32-true",
        "model.num_classes=3",
        "model.width=8",
        "model.blocks=[1,1,1,1]",
        "optimizer.warmup_steps=2",
    ]
    check_trains_and_resumes("yamls/imagenet.yaml", args, tmp_path)
    state = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)
    assert math.isfinite(float(state["state_dict"]["model.head.bias"].sum()))


def test_yaml_matches_the_schema_and_model_options_are_checked() -> None:
    config, task = load_config(str(ROOT / "yamls" / "imagenet.yaml"), ["data.remote=/data"])
    assert task is TASK and config.model.num_classes == 1000 and config.data.eval_split == "val"
    model = task.build_model(config.model)  # ResNet-18
    assert sum(p.numel() for p in model.parameters()) == 11_689_512
    config.model.blocks = [2, 2]
    with pytest.raises(ConfigError, match="model.blocks"):
        task.build_model(config.model)
