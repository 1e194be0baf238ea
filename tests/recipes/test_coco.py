"""COCO recipe: the 2017 release layout → MDS (JPEGs unchanged, boxes as image fractions, labels
1..N) → flipped/resized tensors with their boxes → padded batches → a few training steps."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from recipes.coco import StreamingCOCO, collate_detection
from recipes.coco.__main__ import main
from recipes.coco.convert import Policy, convert, load_categories
from recipes.coco.fixtures import COLOURS, draw, write_raw
from recipes.coco.task import TASK, ModelConfig, assign_cells, detection_loss
from recipes.coco.transforms import eval_transform, train_transform
from recipes.common.config import load_config
from recipes.common.convert import WriteOptions
from streaming_lightning import LocalDataset
from streaming_lightning.errors import ConfigError
from tests.recipes.helpers import check_trains_and_resumes, train_args

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_raw(str(tmp_path_factory.mktemp("coco") / "raw"), train=30, val=8)


@pytest.fixture(scope="module")
def mds(raw: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    out = str(tmp_path_factory.mktemp("coco-mds"))
    convert(raw, _options(out))
    return out


def _options(out: Path | str, force: bool = False) -> WriteOptions:
    return WriteOptions(out=str(out), progress=False, force=force)


def _expected(raw: str, split: str, keep_empty: bool = False, drop_crowd: bool = False) -> list:
    """What each sample must hold, recomputed from the annotation file: (file, image id,
    height, width, boxes, labels) in image-id order."""
    data = json.loads(Path(raw, "annotations", f"instances_{split}2017.json").read_text())
    label = {cid: i + 1 for i, cid in enumerate(sorted(c["id"] for c in data["categories"]))}
    samples = []
    for image in sorted(data["images"], key=lambda image: image["id"]):
        w, h = image["width"], image["height"]
        anns = [
            a
            for a in data["annotations"]
            if a["image_id"] == image["id"] and not (drop_crowd and a["iscrowd"])
        ]
        boxes = np.array(
            [
                [x / w, y / h, (x + bw) / w, (y + bh) / h]
                for x, y, bw, bh in (a["bbox"] for a in anns)
            ],
            np.float64,
        ).astype(np.float32)
        labels = np.array([label[a["category_id"]] for a in anns], np.int64)
        if not anns:
            if not keep_empty:
                continue
            boxes, labels = np.zeros((1, 4), np.float32), np.zeros(1, np.int64)
        path = Path(raw, f"{split}2017", image["file_name"])
        samples.append((path, image["id"], h, w, boxes, labels))
    return samples


def _stored(root: str | Path, split: str) -> list[bytes]:
    """Each sample's stored bytes (the MDS sample record)."""
    dataset = LocalDataset(str(root), split)
    records = []
    for i in range(len(dataset)):
        shard, local = dataset.locate(i)
        records.append(dataset.shards[shard].get_sample_data(local))
    return records


def _check_split(raw: str, out: str | Path, split: str, **policy: bool) -> list:
    expected = _expected(raw, split, **policy)
    dataset = LocalDataset(str(out), split)
    assert len(dataset) == len(expected)
    for i, ((path, image_id, h, w, boxes, labels), record) in enumerate(
        zip(expected, _stored(out, split))
    ):
        assert path.read_bytes() in record, path  # the whole file, not re-encoded
        sample = dataset[i]
        assert (sample["img_id"], sample["htot"], sample["wtot"]) == (image_id, h, w)
        assert sample["bbox_sizes"].dtype == np.float32 and sample["bbox_labels"].dtype == np.int64
        assert np.array_equal(sample["bbox_sizes"], boxes), path
        assert np.array_equal(sample["bbox_labels"], labels), path
    return expected


# ------------------------------------------------------------------------------- conversion


def test_convert_stores_images_unchanged_in_id_order_with_their_boxes(raw: str, mds: str) -> None:
    for split, images, empty in (("train", 30, 6), ("val", 8, 2)):
        expected = _check_split(raw, mds, split)
        assert len(expected) == images - empty  # images without boxes skipped, as mosaicml's
        ids = [image_id for _, image_id, *_ in expected]
        assert ids == sorted(ids)
    # The real ids 1, 3, 18, 90 (listed out of order) become 1..4 in id order.
    labels = load_categories(mds)
    assert [(entry["label"], entry["id"], entry["name"]) for entry in labels] == [
        (0, None, "background"),
        (1, 1, "person"),
        (2, 3, "car"),
        (3, 18, "dog"),
        (4, 90, "toothbrush"),
    ]
    document = json.loads(Path(mds, "categories.json").read_text())
    assert (document["empty_images"], document["crowd_boxes"]) == ("skipped", "kept")
    # The fixture's edge box overshoots by 0.4 px: stored as annotated, clipped when read.
    first = LocalDataset(mds, "train")[0]["bbox_sizes"]
    assert 1 < first[0, 2] < 1.01
    coco = StreamingCOCO(local=mds, split="train", image_size=32, augment=False)
    assert float(coco[0]["boxes"][0, 2]) == 1.0


def test_keep_empty_and_drop_crowd_switch_the_policies(raw: str, mds: str, tmp_path: Path) -> None:
    out = tmp_path / "all"
    convert(raw, _options(out), Policy(keep_empty=True, drop_crowd=True))
    expected = _check_split(raw, out, "train", keep_empty=True, drop_crowd=True)
    assert len(expected) == 30
    crowd = json.loads(Path(raw, "annotations", "instances_train2017.json").read_text())
    crowd_image = next(a["image_id"] for a in crowd["annotations"] if a["iscrowd"])
    default = {e[1]: len(e[5]) for e in _expected(raw, "train")}
    dropped = {e[1]: len(e[5]) for e in expected}
    assert dropped[crowd_image] == default[crowd_image] - 1
    # An empty image's placeholder row (label 0, the background) is no box to StreamingCOCO.
    coco = StreamingCOCO(local=str(out), split="train", image_size=32)
    empties = [i for i, e in enumerate(expected) if e[5].tolist() == [0]]
    assert len(empties) == 6
    for i in empties:
        sample = coco[i]
        assert sample["boxes"].shape == (0, 4) and sample["labels"].shape == (0,)
    document = json.loads((out / "categories.json").read_text())
    assert (document["empty_images"], document["crowd_boxes"]) == ("kept", "dropped")


def test_parallel_cli_conversion_equals_serial_and_reruns_keep_it(
    raw: str, mds: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "parallel"
    args = ["convert", "--in", raw, "--out", str(out), "--no-progress"]
    assert main([*args, "--workers", "2"]) == 0
    assert f"categories: {out / 'categories.json'}" in capsys.readouterr().out
    for split in ("train", "val"):
        assert _stored(out, split) == _stored(mds, split)
    assert (out / "categories.json").read_bytes() == Path(mds, "categories.json").read_bytes()
    index = out / "train" / "index.json"
    before = (index.stat().st_mtime_ns, index.read_bytes())
    assert main(args) == 0  # no --force: the finished splits are kept as they are
    assert "already converted, kept" in capsys.readouterr().err
    assert (index.stat().st_mtime_ns, index.read_bytes()) == before
    # Other flags over a finished conversion: refused without --force, done with it.
    assert main([*args, "--keep-empty"]) == 2
    assert "another conversion" in capsys.readouterr().err
    assert main([*args, "--keep-empty", "--force"]) == 0
    assert len(LocalDataset(str(out), "train")) == 30


def _bad_copy(tmp_path: Path) -> tuple[Path, Path]:
    """A small raw dataset to break, and its train annotation file."""
    bad = Path(write_raw(str(tmp_path / "bad"), train=6, val=2, seed=3))
    return bad, bad / "annotations" / "instances_train2017.json"


def test_bad_annotations_and_images_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad, path = _bad_copy(tmp_path)
    text = path.read_text()
    outs = iter(tmp_path / f"o{i}" for i in range(20))

    def fails(document: dict[str, Any] | str, message: str) -> None:
        path.write_text(document if isinstance(document, str) else json.dumps(document))
        with pytest.raises(ConfigError, match=message):
            convert(str(bad), _options(next(outs)))
        path.write_text(text)

    named = re.escape(str(path))
    fails(text[: len(text) // 2], f"{named}: not valid JSON")
    fails({"images": [], "annotations": []}, f"{named}: no 'categories' list")
    for key, value, message in (
        ("category_id", 2, "category 2, which the file's categories do not list"),
        ("image_id", 7, "of image 7, which the file's images do not list"),
        ("bbox", [1, 1, -3, 4], "outside its"),
        ("bbox", [1, 1, 3], "no valid bbox"),
        ("category_id", "3", "no valid 'category_id'"),
    ):
        changed = json.loads(text)
        changed["annotations"][0][key] = value
        fails(changed, f"{named}: annotation {changed['annotations'][0]['id']}.*{message}")
    # A box reaching 5 px past the right edge is not a rounding overshoot.
    changed = json.loads(text)
    ann = changed["annotations"][0]
    image = next(i for i in changed["images"] if i["id"] == ann["image_id"])
    ann["bbox"] = [image["width"] - 10, 0, 15, 5]
    fails(changed, f"{named}: annotation {ann['id']} has bbox .* outside its")

    # A missing image file, and one whose size is not the annotated size, are named.
    victim = bad / "train2017" / image["file_name"]
    jpeg = victim.read_bytes()
    victim.unlink()
    with pytest.raises(ConfigError, match=re.escape(f"{victim}: missing; {path}")):
        convert(str(bad), _options(next(outs)))
    Image.new("RGB", (image["width"] + 1, image["height"])).save(victim, format="JPEG")
    with pytest.raises(ConfigError, match=re.escape(f"{victim}: the JPEG is")):
        convert(str(bad), _options(next(outs)))
    victim.write_bytes(b"not an image")  # from the CLI: one line naming the file, exit code 2
    assert main(["convert", "--in", str(bad), "--out", str(next(outs)), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert str(victim) in err and "Traceback" not in err
    victim.write_bytes(jpeg)
    convert(str(bad), _options(next(outs)))  # intact again: converts
    with pytest.raises(ConfigError, match="--in must be the COCO 2017 root"):
        convert(str(tmp_path / "nothing-here"), _options(next(outs)))


def test_splits_must_share_categories(tmp_path: Path) -> None:
    bad, _ = _bad_copy(tmp_path)
    val = bad / "annotations" / "instances_val2017.json"
    data = json.loads(val.read_text())
    data["categories"][0]["name"] = "cat"
    val.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=re.escape(f"{val}: its categories differ")):
        convert(str(bad), _options(tmp_path / "out"))
    assert not (tmp_path / "out").exists()  # checked before anything is written


# ------------------------------------------------------------------------------- transforms


def _flip_seeds() -> tuple[int, int]:
    """A seed whose first draw flips, and one whose first draw does not."""
    draws = [np.random.default_rng(seed).random() for seed in range(20)]
    return (
        next(s for s, d in enumerate(draws) if d < 0.5),
        next(s for s, d in enumerate(draws) if d >= 0.5),
    )


def _colour_inside(array: np.ndarray, box: np.ndarray, margin: int = 2) -> np.ndarray:
    """The mean colour of the pixels well inside ``box`` (fractions) of an HWC image."""
    size = array.shape[0]
    left, top, right, bottom = np.rint(box * size).astype(int)
    return array[top + margin : bottom - margin, left + margin : right - margin].mean(axis=(0, 1))


def test_flip_moves_the_boxes_with_the_pixels(tmp_path: Path) -> None:
    width, height, size = 120, 90, 60
    bbox = (12.0, 18.0, 36.0, 45.0)  # x, y, w, h: the left part of the image
    colour = COLOURS[1]
    pixels = draw(width, height, [bbox], [colour], np.random.default_rng(0))
    path = tmp_path / "box.jpg"
    Image.fromarray(pixels).save(path, format="JPEG", quality=95)
    x, y, w, h = bbox
    boxes = np.array([[x / width, y / height, (x + w) / width, (y + h) / height]], np.float32)
    flip, keep = _flip_seeds()

    out, flipped = train_transform(Image.open(path), boxes, size, np.random.default_rng(flip))
    assert out.shape == (size, size, 3)
    assert np.allclose(flipped, [[1 - boxes[0, 2], boxes[0, 1], 1 - boxes[0, 0], boxes[0, 3]]])
    assert np.abs(_colour_inside(out, flipped[0]) - colour).max() < 12
    assert np.abs(_colour_inside(out, boxes[0]) - 128).max() < 12  # the old place: background

    out, same = train_transform(Image.open(path), boxes, size, np.random.default_rng(keep))
    assert np.array_equal(same, boxes)
    assert np.abs(_colour_inside(out, boxes[0]) - colour).max() < 12
    assert np.array_equal(out, eval_transform(Image.open(path), size))

    # Jitter changes colours, never the boxes, and is seeded too.
    rng = np.random.default_rng(keep)
    jittered, same = train_transform(Image.open(path), boxes, size, rng, jitter=0.5)
    again, _ = train_transform(Image.open(path), boxes, size, np.random.default_rng(keep), 0.5)
    assert np.array_equal(same, boxes) and np.array_equal(jittered, again)
    assert not np.array_equal(jittered, out)


def test_dataset_augments_by_seed_epoch_and_index(mds: str) -> None:
    train = StreamingCOCO(local=mds, split="train", image_size=32, jitter=0.2)
    sample = train[3]
    assert sample["image"].shape == (3, 32, 32) and sample["image"].dtype == torch.float32
    assert sample["boxes"].dtype == torch.float32 and sample["labels"].dtype == torch.int64
    assert sample["boxes"].shape == (len(sample["labels"]), 4)
    assert isinstance(sample["image_id"], int) and train.augment

    def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
        return torch.equal(a["image"], b["image"]) and torch.equal(a["boxes"], b["boxes"])

    first = [train[i] for i in range(6)]
    assert all(same(a, train[i]) for i, a in enumerate(first))  # same (seed, epoch, index)
    twin = StreamingCOCO(local=mds, split="train", image_size=32, jitter=0.2)
    assert all(same(a, twin[i]) for i, a in enumerate(first))
    train.__dict__["_iterating_epoch"] = 1
    assert not all(same(a, train[i]) for i, a in enumerate(first))
    other = StreamingCOCO(local=mds, split="train", image_size=32, jitter=0.2, shuffle_seed=1)
    assert not all(same(a, other[i]) for i, a in enumerate(first))
    val = StreamingCOCO(local=mds, split="val", image_size=32)
    assert not val.augment
    with pytest.raises(ConfigError, match="jitter"):
        StreamingCOCO(local=mds, split="val", jitter=1.5)
    with pytest.raises(ConfigError, match="image_size"):
        StreamingCOCO(local=mds, split="val", image_size=0)


# ------------------------------------------------------------------------------- batches, loss


def _sample(boxes: list[list[float]], labels: list[int], image_id: int) -> dict[str, Any]:
    return {
        "image": torch.full((3, 8, 8), float(image_id)),
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(labels, dtype=torch.int64),
        "image_id": image_id,
    }


def test_collate_pads_to_the_largest_box_count() -> None:
    samples = [
        _sample([[0.1, 0.1, 0.5, 0.5], [0.5, 0.5, 0.9, 0.9]], [3, 1], 7),
        _sample([], [], 8),
        _sample([[0.2, 0.3, 0.4, 0.6]], [2], 9),
    ]
    batch = collate_detection(samples)
    assert list(batch) == ["image", "boxes", "labels", "box_mask", "image_id"]  # image first
    assert batch["image"].shape == (3, 3, 8, 8) and batch["image"][1].eq(8).all()
    assert batch["boxes"].shape == (3, 2, 4) and batch["labels"].shape == (3, 2)
    assert batch["box_mask"].tolist() == [[True, True], [False, False], [True, False]]
    assert batch["labels"].tolist() == [[3, 1], [0, 0], [2, 0]]
    assert torch.equal(batch["boxes"][0], samples[0]["boxes"])
    assert torch.equal(batch["boxes"][2, 0], samples[2]["boxes"][0])
    assert batch["boxes"][1].eq(0).all() and batch["boxes"][2, 1].eq(0).all()
    assert batch["image_id"].tolist() == [7, 8, 9]
    empty = collate_detection([_sample([], [], 1), _sample([], [], 2)])
    assert empty["boxes"].shape == (2, 0, 4) and empty["labels"].shape == (2, 0)
    assert empty["box_mask"].shape == (2, 0) and empty["image"].shape == (2, 3, 8, 8)


def test_cells_are_assigned_by_box_centre_one_box_per_cell() -> None:
    boxes = torch.tensor(
        [
            [[0.0, 0.0, 0.2, 0.2], [0.6, 0.1, 1.0, 0.4], [0.05, 0.05, 0.4, 0.4]],
            [[0.5, 0.5, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]],
        ]
    )
    mask = torch.tensor([[True, True, True], [True, False, False]])
    cells, chosen = assign_cells(boxes, mask, (2, 2))
    # Image 0: boxes 0 and 2 are centred in cell (0, 0), box 2 is larger; box 1 in (0, 1).
    # Image 1: box 0's centre (0.75, 0.75) is cell (1, 1) = flat 4 + 3.
    assert sorted(zip(cells.tolist(), chosen.tolist())) == [(0, 2), (1, 1), (7, 3)]


def test_loss_handles_empty_images_and_learns_one_batch(mds: str) -> None:
    torch.manual_seed(0)
    model = TASK.build_model(ModelConfig(num_classes=4, width=8))
    empty = collate_detection([_sample([], [], i) for i in range(2)])
    empty["image"] = torch.randn(2, 3, 32, 32)
    loss, metrics = detection_loss(model, empty)
    assert math.isfinite(loss.item()) and set(metrics) == {"objectness_accuracy"}
    loss.backward()

    coco = StreamingCOCO(local=mds, split="train", image_size=64, augment=False)
    batch = collate_detection([coco[i] for i in range(8)])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        optimizer.zero_grad()
        loss, metrics = detection_loss(model, batch)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(math.isfinite(value) for value in losses)
    assert losses[-1] < 0.5 * losses[0], losses
    assert set(metrics) == {"objectness_accuracy", "class_accuracy", "box_l1"}


# ------------------------------------------------------------------------------- train.py


def test_train_py_trains_checkpoints_and_resumes(mds: str, tmp_path: Path) -> None:
    args = [
        *train_args(mds, tmp_path, batch_size=4),
        "data.options.image_size=64",
        "trainer.precision=32-true",
        "model.num_classes=4",
        "model.width=8",
        "model.blocks=[1,1,1,1]",
        "optimizer.warmup_steps=2",
    ]
    # 24 training images, 6 batches an epoch: stop after 4, resume for a 5th.
    check_trains_and_resumes("yamls/coco.yaml", args, tmp_path, first=4, second=5)
    state = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)
    # The per-sample (collate_fn) loader resumed mid-epoch after sample 16, not from 0.
    position = state["StreamingDataModule"]["train"]
    assert (position["epoch"], position["sample_in_epoch"]) == (0, 20)
    assert math.isfinite(float(state["state_dict"]["model.head.bias"].sum()))


def test_yaml_matches_the_schema_and_model_options_are_checked() -> None:
    config, task = load_config(str(ROOT / "yamls" / "coco.yaml"), ["data.remote=/data"])
    assert task is TASK and task.collate is collate_detection
    assert config.model.num_classes == 80 and config.data.eval_split == "val"
    model = task.build_model(config.model)
    assert model(torch.zeros(1, 3, 300, 300)).shape == (1, 85, 19, 19)  # SSD300's 19x19 grid
    config.model.blocks = []
    with pytest.raises(ConfigError, match="model.blocks"):
        task.build_model(config.model)


def test_fixture_matches_the_release_layout(raw: str) -> None:
    for split in ("train", "val"):
        names = sorted(os.listdir(Path(raw, f"{split}2017")))
        assert names and all(re.fullmatch(r"\d{12}\.jpg", name) for name in names)
        data = json.loads(Path(raw, "annotations", f"instances_{split}2017.json").read_text())
        assert sorted(f"{image['id']:012d}.jpg" for image in data["images"]) == names
