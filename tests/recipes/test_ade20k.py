"""ADE20K recipe: image/annotation pairs → MDS (bytes unchanged) → jointly augmented image and
label tensors → a few training steps of a segmentation model."""

from __future__ import annotations

import csv
import math
import os
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from recipes.ade20k import StreamingADE20K
from recipes.ade20k.__main__ import main
from recipes.ade20k.convert import NUM_CLASSES, RELEASE, convert
from recipes.ade20k.fixtures import CLASSES, class_colour, synthetic_pair, write_raw
from recipes.ade20k.model import SegmentationFCN
from recipes.ade20k.task import TASK, segmentation_loss, segmentation_metrics
from recipes.ade20k.transforms import (
    IGNORE_INDEX,
    PAD_RGB,
    eval_transform,
    photometric_distortion,
    scale_crop_placement,
    source_box,
    to_target,
    train_transform,
)
from recipes.common.config import load_config
from recipes.common.convert import WriteOptions
from recipes.common.metrics import RecipeMetric, batch_value
from streaming_lightning import LocalDataset
from streaming_lightning.errors import ConfigError
from tests.recipes.helpers import check_trains_and_resumes, train_args

ROOT = Path(__file__).resolve().parents[2]
SPLIT_FOLDERS = {"train": "training", "val": "validation"}


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The folder holding ADEChallengeData2016 (``--in`` may be either)."""
    root = str(tmp_path_factory.mktemp("ade20k") / "raw")
    write_raw(root)
    return root


@pytest.fixture(scope="module")
def mds(raw: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    out = str(tmp_path_factory.mktemp("ade20k-mds"))
    convert(os.path.join(raw, RELEASE), WriteOptions(out=out, progress=False))
    return out


def _options(out: Path | str) -> WriteOptions:
    return WriteOptions(out=str(out), progress=False)


def _sources(raw: str, split: str) -> list[tuple[str, Path, Path]]:
    """Every (uid, image, annotation) of a split, in the order samples must have."""
    release = Path(raw, RELEASE)
    images = sorted((release / "images" / SPLIT_FOLDERS[split]).iterdir())
    return [
        (
            image.stem[-8:],
            image,
            release / "annotations" / SPLIT_FOLDERS[split] / f"{image.stem}.png",
        )
        for image in images
    ]


def _stored(root: str, split: str) -> list[bytes]:
    """Each sample's stored bytes (the MDS sample record: column sizes, then the values)."""
    dataset = LocalDataset(root, split)
    records = []
    for i in range(len(dataset)):
        shard, local = dataset.locate(i)
        records.append(dataset.shards[shard].get_sample_data(local))
    return records


# -------------------------------------------------------------------------------- convert


def test_convert_stores_every_pair_unchanged_in_uid_order(raw: str, mds: str) -> None:
    for split, count in (("train", 12), ("val", 4)):
        sources = _sources(raw, split)
        assert len(sources) == count and [s[0] for s in sources] == sorted(s[0] for s in sources)
        dataset = LocalDataset(mds, split)
        assert len(dataset) == count
        for i, ((uid, image, annotation), record) in enumerate(zip(sources, _stored(mds, split))):
            jpeg, png = image.read_bytes(), annotation.read_bytes()
            # Columns uid, x, y: their sizes, then the bytes — the files, not re-encoded.
            sizes = struct.pack("<3I", 8, len(jpeg), len(png))
            assert record == sizes + uid.encode() + jpeg + png, image
            sample = dataset[i]
            assert sample["uid"] == uid.encode()
            assert np.array_equal(np.asarray(sample["y"]), np.asarray(Image.open(annotation)))
    grayscale = _sources(raw, "train")[1][1]  # the fixture's grayscale JPEG, stored as it is
    assert Image.open(grayscale).mode == "L"


def test_parallel_cli_conversion_equals_serial_and_a_rerun_keeps_it(
    raw: str, mds: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "parallel"
    # --in is the folder holding ADEChallengeData2016 here, the release folder for ``mds``.
    args = ["convert", "--in", raw, "--out", str(out), "--no-progress"]
    assert main([*args, "--workers", "2"]) == 0
    assert f"val: {out / 'val' / 'index.json'}" in capsys.readouterr().out
    for split in ("train", "val"):
        assert _stored(str(out), split) == _stored(mds, split)
    index = out / "train" / "index.json"
    before = (index.read_bytes(), index.stat().st_mtime_ns)
    assert main(args) == 0  # no --force: the finished splits are kept, not rewritten
    assert "already converted, kept" in capsys.readouterr().err
    assert (index.read_bytes(), index.stat().st_mtime_ns) == before


def test_the_known_corrupt_training_uids_are_left_out(tmp_path: Path, capsys: Any) -> None:
    release = Path(write_raw(str(tmp_path / "raw"), train=2, val=1))
    for kind, extension in (("images", "jpg"), ("annotations", "png")):
        source = next((release / kind / "training").glob(f"*.{extension}"))
        (source.parent / f"ADE_train_00001701.{extension}").write_bytes(source.read_bytes())
    convert(str(release), _options(tmp_path / "out"))
    uids = [sample["uid"] for sample in LocalDataset(str(tmp_path / "out"), "train")]
    assert len(uids) == 2 and b"00001701" not in uids
    assert "leaving out 1 image(s) mosaicml-streaming's converter lists as corrupt: 00001701" in (
        capsys.readouterr().err
    )


def _bad_release(tmp_path: Path) -> Path:
    return Path(write_raw(str(tmp_path / "bad"), train=3, val=1))


def test_unpaired_files_and_wrong_layouts_are_named(tmp_path: Path) -> None:
    release = _bad_release(tmp_path)
    image, annotation = _sources(str(release.parent), "train")[1][1:]
    png = annotation.read_bytes()
    annotation.unlink()
    with pytest.raises(ConfigError, match=re.escape(f"{image}: no annotation {annotation}")):
        convert(str(release), _options(tmp_path / "o1"))
    annotation.write_bytes(png)
    jpeg = image.read_bytes()
    image.unlink()
    with pytest.raises(ConfigError, match=re.escape(f"{annotation}: no image {image}")):
        convert(str(release), _options(tmp_path / "o2"))
    image.write_bytes(jpeg)

    stray = release / "images" / "training" / "ADE_train_1.jpg"
    stray.write_bytes(jpeg)
    with pytest.raises(ConfigError, match=re.escape(f"{stray}: not a file named")):
        convert(str(release), _options(tmp_path / "o3"))
    stray.unlink()
    with pytest.raises(ConfigError, match="no images/ and annotations/"):
        convert(str(tmp_path / "nothing-here"), _options(tmp_path / "o4"))
    validation = release / "annotations" / "validation"
    validation.rename(tmp_path / "moved")
    with pytest.raises(ConfigError, match=re.escape(f"{validation}: missing")):
        convert(str(release), _options(tmp_path / "o5"))


def test_corrupt_images_and_masks_are_named(tmp_path: Path) -> None:
    release = _bad_release(tmp_path)
    image, annotation = _sources(str(release.parent), "train")[2][1:]
    jpeg = image.read_bytes()
    image.write_bytes(jpeg[: len(jpeg) // 2])
    with pytest.raises(ConfigError, match=re.escape(f"{image}: a corrupt or truncated JPEG")):
        convert(str(release), _options(tmp_path / "o1"))
    image.write_bytes(jpeg)
    size = Image.open(image).size

    annotation.write_bytes(b"not an image")
    with pytest.raises(ConfigError, match=re.escape(f"{annotation}: not a readable PNG")):
        convert(str(release), _options(tmp_path / "o2"))
    Image.new("RGB", size).save(annotation)  # the full ADE20K release's colour-coded masks
    with pytest.raises(ConfigError, match=re.escape(f"{annotation}: a RGB image, not an 8-bit")):
        convert(str(release), _options(tmp_path / "o3"))
    Image.new("L", size, 200).save(annotation)
    with pytest.raises(ConfigError, match=re.escape(f"{annotation}: holds label 200")):
        convert(str(release), _options(tmp_path / "o4"))
    Image.new("L", (size[0] + 1, size[1]), 3).save(annotation)
    with pytest.raises(ConfigError, match=re.escape(f"{annotation}: {size[0] + 1}x{size[1]}")):
        convert(str(release), _options(tmp_path / "o5"))


def test_cli_errors_are_one_line_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    release = _bad_release(tmp_path)
    image = _sources(str(release.parent), "val")[0][1]
    image.write_bytes(b"not an image")
    args = ["convert", "--in", str(release), "--out", str(tmp_path / "o"), "--no-progress"]
    assert main([*args, "--workers", "2"]) == 2  # raised in a worker process
    err = capsys.readouterr().err
    assert err.startswith(f"error: {image}: not a readable image") and "Traceback" not in err


# ----------------------------------------------------------------------------- transforms


def test_placement_and_source_box_stay_within_bounds() -> None:
    rng = np.random.default_rng(0)
    for width, height in [(683, 512), (512, 683), (48, 40), (2000, 300), (17, 13)]:
        for _ in range(200):
            crop = int(rng.integers(8, 600))
            base = int(rng.integers(8, 600))
            placement = scale_crop_placement(width, height, crop, base, rng)
            short = min(placement.width, placement.height)
            assert base * 0.5 - 1 <= short <= base * 2 + 1
            # Both sides scaled by one factor, each rounded to a pixel: the aspect is kept.
            spread = abs(placement.width / width - placement.height / height)
            assert spread <= 0.5 / width + 0.5 / height + 1e-12
            assert 0 <= placement.left <= max(0, placement.width - crop)
            assert 0 <= placement.top <= max(0, placement.height - crop)
            (covered_w, covered_h), box = source_box(placement, crop, width, height)
            assert covered_w == min(crop, placement.width)
            assert covered_h == min(crop, placement.height)
            assert 0 <= box[0] < box[2] <= width + 1e-9 and 0 <= box[1] < box[3] <= height + 1e-9
    # A scale range of one value: the short side is exactly base.
    assert scale_crop_placement(400, 300, 64, 150, rng, (1.0, 1.0))[:2] == (200, 150)


def _nearest_class(pixels: np.ndarray, classes: int) -> np.ndarray:
    palette = np.stack([class_colour(label) for label in range(classes + 1)])
    distance = ((pixels[..., None, :].astype(float) - palette) ** 2).sum(axis=-1)
    return distance.argmin(axis=-1)


def test_train_transform_moves_image_and_mask_together() -> None:
    rng = np.random.default_rng(1)
    pixels, labels = synthetic_pair((97, 61), rng)  # each class drawn in its own colour
    image, mask = Image.fromarray(pixels), Image.fromarray(labels)
    agreement = []
    for seed in range(40):
        out, target = train_transform(
            image, mask, 48, 40, np.random.default_rng(seed), photometric=False
        )
        assert out.shape == (48, 48, 3) and out.dtype == np.uint8
        assert target.shape == (48, 48) and target.dtype == np.uint8
        seen = _nearest_class(out, CLASSES)
        # Bilinear blending changes colours only at region edges: nearly every pixel's
        # colour still names its label. The mask flipped alone would not match.
        agreement.append((seen == target).mean())
        assert (seen == target).mean() > 0.9, seed
        if not np.array_equal(target, target[:, ::-1]):
            assert (seen == target[:, ::-1]).mean() < (seen == target).mean()
    assert min(agreement) > 0.9


def test_a_mask_of_another_resolution_is_cropped_at_the_same_place() -> None:
    pixels, labels = synthetic_pair((96, 64), np.random.default_rng(2))
    image = Image.fromarray(pixels).resize((48, 32), Image.Resampling.BOX)  # half the mask's
    for seed in range(10):
        out, target = train_transform(
            image, Image.fromarray(labels), 32, 24, np.random.default_rng(seed), photometric=False
        )
        assert (_nearest_class(out, CLASSES) == target).mean() > 0.85, seed


def test_masks_are_resized_nearest_and_padded_with_other() -> None:
    labels = np.zeros((50, 70), np.uint8)
    labels[:, 20:45] = 37
    labels[10:30, 30:] = 150  # neighbours whose average (93) a blurred mask would invent
    mask = Image.fromarray(labels)
    image = Image.fromarray(np.zeros((50, 70, 3), np.uint8))
    for seed in range(30):
        _, target = train_transform(image, mask, 40, 30, np.random.default_rng(seed))
        assert set(np.unique(target)) <= {0, 37, 150}, seed
    _, target = eval_transform(image, mask, 33)
    assert set(np.unique(target)) == {0, 37, 150}
    # Scaled smaller than the crop: the rest is padding, mean colour and label 0 ("other").
    out, target = train_transform(image, mask, 64, 20, np.random.default_rng(0), scale=(1.0, 1.0))
    assert np.all(target[20:] == 0) and np.all(out[20:] == PAD_RGB)
    assert np.any(target[:20] == 150)
    assert to_target(target)[20:].eq(IGNORE_INDEX).all()


def test_colour_distortion_changes_only_the_image_colours() -> None:
    pixels, labels = synthetic_pair((90, 70), np.random.default_rng(3))
    image, mask = Image.fromarray(pixels), Image.fromarray(labels)
    changed = 0
    for seed in range(40):
        plain, plain_target = train_transform(
            image, mask, 64, 40, np.random.default_rng(seed), photometric=False
        )
        out, target = train_transform(image, mask, 64, 40, np.random.default_rng(seed))
        assert np.array_equal(target, plain_target), seed  # same crop, flip and mask
        padding = np.all(plain == PAD_RGB, axis=-1) & (plain_target == 0)
        assert np.all(out[padding] == PAD_RGB), seed  # mmsegmentation pads after distorting
        # A colour function of the pixel: equal colours before stay equal colours after.
        flat, distorted = plain.reshape(-1, 3), out.reshape(-1, 3)
        _, inverse = np.unique(flat, axis=0, return_inverse=True)
        for group in np.unique(inverse)[:50]:
            assert len(np.unique(distorted[inverse.ravel() == group], axis=0)) == 1, seed
        changed += not np.array_equal(out, plain)
    assert changed >= 30  # every step is skipped together 1 time in 16


def test_photometric_distortion_stays_in_mmsegmentation_ranges() -> None:
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 200
    grey = np.full((4, 4, 3), 120, np.uint8)
    hues, greys = [], []
    for seed in range(300):
        out = photometric_distortion(red, np.random.default_rng(seed))
        assert out.dtype == np.uint8 and out.shape == red.shape
        hue = int(np.asarray(Image.fromarray(out).convert("HSV"))[0, 0, 0])
        hues.append(min(hue, 256 - hue))  # distance from red on Pillow's 256-step circle
        flat = photometric_distortion(grey, np.random.default_rng(seed))
        assert np.all(flat == flat[0, 0, 0]), seed  # grey has no hue or saturation to move
        greys.append(int(flat[0, 0, 0]))
    assert max(hues) <= round(18 * 256 / 180) + 1 and max(hues) > 10
    # Brightness ±32, then contrast 0.5-1.5 (before or after): grey 120 stays in 44-228.
    assert 44 <= min(greys) < 100 and 140 < max(greys) <= 228
    same = photometric_distortion(red, np.random.default_rng(5))
    assert np.array_equal(same, photometric_distortion(red, np.random.default_rng(5)))


def test_palette_masks_keep_their_indexes() -> None:
    labels = np.full((12, 12), 150, np.uint8)
    labels[:, :4] = 3
    palette = Image.frombytes("P", (12, 12), labels.tobytes())
    palette.putpalette([255 - v for v in range(256) for _ in range(3)])  # indexes != colours
    _, target = eval_transform(Image.new("RGB", (12, 12)), palette, 12)
    assert np.array_equal(target, labels)


def test_labels_shift_and_other_is_ignored() -> None:
    target = to_target(np.array([[0, 1, 2], [149, 150, 0]], np.uint8))
    assert target.dtype == torch.int64
    assert target.tolist() == [[IGNORE_INDEX, 0, 1], [148, 149, IGNORE_INDEX]]


# -------------------------------------------------------------------------------- dataset


def test_dataset_samples_and_augmentation_by_epoch_and_index(mds: str) -> None:
    train = StreamingADE20K(local=mds, split="train", crop_size=32, shuffle=True)
    assert train.augment and train.base_size == 32
    x, y = train[5]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert y.shape == (32, 32) and y.dtype == torch.int64
    assert int(y.min()) >= IGNORE_INDEX and int(y.max()) < CLASSES
    assert torch.equal(train[5][0], x) and torch.equal(train[5][1], y)  # same epoch, index
    plain = StreamingADE20K(local=mds, split="train", crop_size=32, augment=False)
    assert any(not torch.equal(train[i][1], plain[i][1]) for i in range(4))
    train.__dict__["_iterating_epoch"] = 1
    fresh = StreamingADE20K(local=mds, split="train", crop_size=32)
    assert any(not torch.equal(train[i][1], fresh[i][1]) for i in range(4))
    val = StreamingADE20K(local=mds, split="val", crop_size=24)
    assert not val.augment
    x, y = val[0]
    assert x.shape == (3, 24, 24) and y.shape == (24, 24) and torch.equal(val[0][0], x)
    with pytest.raises(ConfigError, match="min_scale"):
        StreamingADE20K(local=mds, split="val", min_scale=2.0, max_scale=1.0)
    with pytest.raises(ConfigError, match="crop_size"):
        StreamingADE20K(local=mds, split="val", crop_size=0)


def test_the_dataset_pads_with_zero_images_and_ignored_targets(mds: str) -> None:
    # Short side 16 at scale 1 and images at most 60 × 50: every crop of 64 is padded below.
    small = StreamingADE20K(
        local=mds, split="train", crop_size=64, base_size=16, min_scale=1.0, max_scale=1.0
    )
    for i in range(3):
        x, y = small[i]
        assert y[-1].eq(IGNORE_INDEX).all() and float(x[:, -1].abs().max()) < 0.02
        assert float(x[:, :8].abs().max()) > 0.1  # the image above the padding


# ---------------------------------------------------------------------------- model, task


def test_model_scores_every_pixel_of_any_size() -> None:
    model = SegmentationFCN(num_classes=7, width=4).eval()
    for size in (32, 37):
        assert model(torch.zeros(2, 3, size, size)).shape == (2, 7, size, size)
    with pytest.raises(ValueError, match="blocks"):
        SegmentationFCN(blocks=())


def test_metrics_skip_ignored_pixels() -> None:
    target = torch.tensor([[[0, 0, 1, IGNORE_INDEX]]])  # 1 × 1 × 4
    predicted = torch.tensor([[[0, 1, 1, 2]]])
    scores = torch.nn.functional.one_hot(predicted, 3).permute(0, 3, 1, 2).float()
    metrics = {k: batch_value(v) for k, v in segmentation_metrics(scores, target).items()}
    assert math.isclose(float(metrics["pixel_accuracy"]), 2 / 3, rel_tol=1e-6)
    # Class 0: 1 right of 2 (union 2); class 1: 1 right, union 2; class 2 absent.
    assert math.isclose(float(metrics["mean_iou"]), (1 / 2 + 1 / 2) / 2, rel_tol=1e-6)
    perfect = {k: batch_value(v) for k, v in segmentation_metrics(scores, predicted).items()}
    assert float(perfect["pixel_accuracy"]) == 1 == float(perfect["mean_iou"])
    none = segmentation_metrics(scores, torch.full_like(target, IGNORE_INDEX))
    assert float(batch_value(none["mean_iou"])) == 0 == float(batch_value(none["pixel_accuracy"]))


def test_split_metrics_sum_over_batches_rather_than_average_them() -> None:
    """mmsegmentation's mIoU: intersections and unions summed over the split. Two batches,
    one with a rare class predicted well, one large and wrong: the split's figure is the one
    of the concatenated batches, whatever the batching — the mean of batch mIoUs is not."""
    first_target = torch.tensor([[[2, 2, 0, 0]]])
    first_scores = torch.nn.functional.one_hot(first_target, 3).permute(0, 3, 1, 2).float()
    second_target = torch.zeros(1, 1, 12, dtype=torch.long)
    second_target[..., :6] = 1
    second_pred = torch.ones_like(second_target)
    second_scores = torch.nn.functional.one_hot(second_pred, 3).permute(0, 3, 1, 2).float()
    split = {name: RecipeMetric(name) for name in ("pixel_accuracy", "mean_iou")}
    per_batch = {name: [] for name in split}
    for scores, target in ((first_scores, first_target), (second_scores, second_target)):
        for name, value in segmentation_metrics(scores, target).items():
            split[name].update(value, len(target))
            per_batch[name].append(float(batch_value(value)))
    joined = segmentation_metrics(
        torch.cat([first_scores, second_scores], dim=-1),
        torch.cat([first_target, second_target], dim=-1),
    )
    for name, metric in split.items():
        assert math.isclose(float(metric.compute()), float(batch_value(joined[name])), rel_tol=1e-6)
    # Class 0: 2 of 8 (union 8); class 1: 6 of 6, union 12; class 2: 2 of 2.
    assert math.isclose(float(split["mean_iou"].compute()), (2 / 8 + 6 / 12 + 1) / 3, rel_tol=1e-6)
    assert float(split["mean_iou"].compute()) != pytest.approx(np.mean(per_batch["mean_iou"]))


def test_loss_ignores_other_and_names_a_too_small_model() -> None:
    model = SegmentationFCN(num_classes=3, width=4)
    images = torch.randn(2, 3, 16, 16)
    target = torch.full((2, 16, 16), IGNORE_INDEX)
    target[:, :8] = 1
    loss, metrics = segmentation_loss(model, (images, target))
    assert (
        loss.ndim == 0
        and math.isfinite(loss.item())
        and set(metrics)
        == {
            "pixel_accuracy",
            "mean_iou",
        }
    )
    target[0, 0, 0] = 3
    with pytest.raises(ConfigError, match="model.num_classes"):
        segmentation_loss(model, (images, target))


# ------------------------------------------------------------------------------- train.py


def test_train_py_trains_checkpoints_and_resumes(mds: str, tmp_path: Path) -> None:
    args = [
        *train_args(mds, tmp_path, batch_size=4),
        "data.options.crop_size=32",
        "trainer.precision=32-true",
        f"model.num_classes={CLASSES}",
        "model.width=8",
        "model.blocks=[1,1,1]",
        "optimizer.warmup_steps=2",
    ]
    check_trains_and_resumes("yamls/ade20k.yaml", args, tmp_path)  # 3 steps an epoch, + val
    state = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)
    assert math.isfinite(float(state["state_dict"]["model.head.3.bias"].sum()))
    # Each epoch end evaluated the val split: the split's metrics, from summed counts.
    logged = [
        row
        for path in sorted((tmp_path / "ckpt" / "logs").rglob("metrics.csv"))
        for row in csv.DictReader(path.open())
        if row.get("eval/mean_iou")
    ]
    assert logged, "no evaluation was logged"
    for row in logged:
        assert 0 <= float(row["eval/mean_iou"]) <= 1 and 0 <= float(row["eval/pixel_accuracy"]) <= 1


def test_yaml_matches_the_schema_and_model_options_are_checked() -> None:
    config, task = load_config(str(ROOT / "yamls" / "ade20k.yaml"), ["data.remote=/data"])
    assert task is TASK and config.model.num_classes == NUM_CLASSES
    assert config.data.eval_split == "val" and config.data.options["crop_size"] == 512
    model = task.build_model(config.model)
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, NUM_CLASSES, 64, 64)
    config.model.blocks = []
    with pytest.raises(ConfigError, match="model.blocks"):
        task.build_model(config.model)
