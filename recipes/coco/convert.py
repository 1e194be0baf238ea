"""COCO 2017 object detection (``train2017/``, ``val2017/``, ``annotations/``) → MDS.

The input is the release as downloaded: ``<in>/train2017/*.jpg``, ``<in>/val2017/*.jpg`` and
``<in>/annotations/instances_{train,val}2017.json``. A split is converted when its annotation
file exists; its images are the ones that file lists (other files in the folder are ignored).

Columns are mosaicml-streaming's COCO names and encodings, so either library reads the other's
output: ``img: jpeg`` (the file's bytes unchanged: the ``jpeg`` coder copies the file an image
was opened from), ``img_id: int``, ``htot: int`` and ``wtot: int`` (the height and width the
annotation file gives, checked against the JPEG), ``bbox_sizes: ndarray:float32`` (one row per
box: left, top, right, bottom as fractions of the image, ``x / w``, ``y / h``, ``(x + bw) / w``,
``(y + bh) / h`` computed in double precision as the reference does) and
``bbox_labels: ndarray:int64``.

Labels: the 80 categories (ids 1..90 with gaps) sorted by id become 1..80; 0 is the
background. The reference numbers them in the annotation file's order, which in the released
files is id order, so the labels agree. ``<out>/categories.json`` records the mapping (entry
``i`` is label ``i``: the original id, name and supercategory) and the two policies below.

Images without annotations (1,021 in train2017, 48 in val2017) are skipped by default, as the
reference converter does (its train split has 117,266 images, val 4,952), so datasets made by
either are interchangeable; SSD-style pipelines train without them too. ``--keep-empty`` keeps
them, as torchvision's ``CocoDetection`` does (for evaluation over all 5,000 val images). MDS
cannot store a 0-element array (in either library), so such an image gets one placeholder row:
box (0, 0, 0, 0) with label 0, the background — StreamingCOCO drops label-0 rows, and an SSD
box encoder matches a zero box to no anchor, i.e. the whole image is background.

Crowd annotations (``iscrowd: 1``, a box around a group of objects) are kept as ordinary boxes
by default, as the reference does (the columns have no iscrowd flag). ``--drop-crowd`` leaves
them out, as torchvision's and Detectron's training pipelines do; an image left with no boxes
then follows the empty-image policy.

Boxes are stored as the annotation gives them, as the reference does: COCO's boxes are derived
from polygons and may overshoot the image edge by a fraction of a pixel, which StreamingCOCO
clips when reading. A box more than ``EDGE_TOLERANCE`` pixels outside the image, or with a
negative size, is an error naming the annotation file and the annotation; so are malformed
JSON, an annotation of an unknown image or category, a missing image file, and a JPEG whose size
is not the annotated one (its fractions would be wrong).

Samples are in image-id order (the reference shuffles train once at conversion time; here the
loader shuffles every epoch). Parts (the units ``--workers`` share and a resume skips) are
balanced runs of consecutive images, as in the ImageNet recipe
(:func:`recipes.imagenet.convert.part_sizes`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

from recipes.common.convert import WriteOptions, convert_split, shared_workers
from recipes.common.sidecar import put_describing
from recipes.imagenet.convert import open_jpeg, part_sizes
from streaming_lightning.errors import ConfigError
from streaming_lightning.storage.uploader import join_url

SPLITS = ("train", "val")
COLUMNS = {
    "img": "jpeg",
    "img_id": "int",
    "htot": "int",
    "wtot": "int",
    "bbox_sizes": "ndarray:float32",
    "bbox_labels": "ndarray:int64",
}
CATEGORIES_BASENAME = "categories.json"
#: Pixels a box may extend past the image edge (polygon-derived boxes overshoot by less).
EDGE_TOLERANCE = 1.0
#: The label of the background, and of an empty image's placeholder row.
BACKGROUND = 0


class Record(NamedTuple):
    """One image to convert: its file, id, annotated size and boxes (already as stored)."""

    path: str
    image_id: int
    height: int
    width: int
    boxes: np.ndarray  # K × 4 float32: left, top, right, bottom fractions
    labels: np.ndarray  # K int64: 1..80, or [0] for an empty image's placeholder


@dataclass(frozen=True)
class Category:
    id: int
    name: str
    supercategory: str


@dataclass(frozen=True)
class Policy:
    """What the converter does with images without boxes and with crowd annotations."""

    keep_empty: bool = False
    drop_crowd: bool = False


def split_paths(raw: str, split: str) -> tuple[str, str]:
    """(image folder, annotation file) of ``split`` in the release layout."""
    return (
        os.path.join(raw, f"{split}2017"),
        os.path.join(raw, "annotations", f"instances_{split}2017.json"),
    )


def load_annotations(path: str) -> dict[str, Any]:
    """The annotation file's JSON, with its three lists checked to be there."""
    try:
        with open(path, "rb") as file:
            data = json.load(file)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(
            f"{path}: not valid JSON ({err}); download the annotation file again "
            "(annotations_trainval2017.zip)."
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object with images, annotations, categories.")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise ConfigError(
                f"{path}: no {key!r} list; is this an instances_*.json detection file "
                "(captions and keypoints files are not)?"
            )
    return data


def _field(path: str, what: str, entry: Any, key: str, kind: type | tuple[type, ...]) -> Any:
    value = entry.get(key) if isinstance(entry, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ConfigError(f"{path}: {what} has no valid {key!r} ({value!r}); fix or remove it.")
    return value


def parse_categories(path: str, data: dict[str, Any]) -> list[Category]:
    """The categories sorted by id (label ``i + 1`` is entry ``i``)."""
    categories: dict[int, Category] = {}
    for n, entry in enumerate(data["categories"]):
        what = f"category entry {n}"
        cid = _field(path, what, entry, "id", int)
        if cid in categories:
            raise ConfigError(f"{path}: category id {cid} is listed twice.")
        name = _field(path, what, entry, "name", str)
        supercategory = entry.get("supercategory", "")
        categories[cid] = Category(cid, name, str(supercategory))
    if not categories:
        raise ConfigError(f"{path}: the categories list is empty.")
    return [categories[cid] for cid in sorted(categories)]


def _box(path: str, ann: dict[str, Any], what: str, width: int, height: int) -> list[float]:
    bbox = ann.get("bbox")
    if (
        not isinstance(bbox, list)
        or len(bbox) != 4
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)
        or not all(math.isfinite(v) for v in bbox)
    ):
        raise ConfigError(f"{path}: {what} has no valid bbox [x, y, w, h] ({bbox!r}).")
    x, y, w, h = (float(v) for v in bbox)
    if (
        w < 0
        or h < 0
        or x < -EDGE_TOLERANCE
        or y < -EDGE_TOLERANCE
        or x + w > width + EDGE_TOLERANCE
        or y + h > height + EDGE_TOLERANCE
    ):
        raise ConfigError(
            f"{path}: {what} has bbox {bbox}, outside its {width}x{height} image (or of "
            "negative size); fix or remove the annotation."
        )
    return [x / width, y / height, (x + w) / width, (y + h) / height]


def list_split(raw: str, split: str, policy: Policy) -> tuple[list[Category], list[Record]]:
    """The split's categories and the images to convert, in image-id order, with their boxes."""
    folder, path = split_paths(raw, split)
    data = load_annotations(path)
    categories = parse_categories(path, data)
    label = {category.id: i + 1 for i, category in enumerate(categories)}
    images: dict[int, tuple[str, int, int]] = {}
    for n, entry in enumerate(data["images"]):
        what = f"image entry {n}"
        image_id = _field(path, what, entry, "id", int)
        name = _field(path, f"image {image_id}", entry, "file_name", str)
        height = _field(path, f"image {image_id}", entry, "height", int)
        width = _field(path, f"image {image_id}", entry, "width", int)
        if image_id in images:
            raise ConfigError(f"{path}: image id {image_id} is listed twice.")
        if name != os.path.basename(name) or name in ("", ".", ".."):
            raise ConfigError(f"{path}: image {image_id} has file_name {name!r}, not a file name.")
        if height < 1 or width < 1:
            raise ConfigError(f"{path}: image {image_id} has size {width}x{height}.")
        images[image_id] = (name, height, width)
    boxes: dict[int, list[list[float]]] = {}
    labels: dict[int, list[int]] = {}
    for n, ann in enumerate(data["annotations"]):
        ann_id = ann.get("id", f"entry {n}") if isinstance(ann, dict) else f"entry {n}"
        what = f"annotation {ann_id}"
        image_id = _field(path, what, ann, "image_id", int)
        category_id = _field(path, what, ann, "category_id", int)
        if image_id not in images:
            raise ConfigError(
                f"{path}: {what} is of image {image_id}, which the file's images do not list."
            )
        if category_id not in label:
            raise ConfigError(
                f"{path}: {what} has category {category_id}, which the file's categories do "
                "not list."
            )
        _, height, width = images[image_id]
        box = _box(path, ann, what, width, height)
        if policy.drop_crowd and ann.get("iscrowd", 0):
            continue
        boxes.setdefault(image_id, []).append(box)
        labels.setdefault(image_id, []).append(label[category_id])
    records = []
    for image_id in sorted(images):
        name, height, width = images[image_id]
        if image_id in boxes:
            box_array = np.array(boxes[image_id], np.float64).astype(np.float32)
            label_array = np.array(labels[image_id], np.int64)
        elif policy.keep_empty:
            box_array = np.zeros((1, 4), np.float32)
            label_array = np.array([BACKGROUND], np.int64)
        else:
            continue
        image_path = os.path.join(folder, name)
        if not os.path.isfile(image_path):
            raise ConfigError(
                f"{image_path}: missing; {path} lists it as image {image_id}. Unpack "
                f"{split}2017.zip into {os.path.dirname(folder) or '.'} again."
            )
        records.append(Record(image_path, image_id, height, width, box_array, label_array))
    return categories, records


def plan_parts(records: list[Record]) -> list[list[Record]]:
    """``records`` cut into balanced runs of consecutive images (ImageNet's part sizes)."""
    parts, start = [], 0
    for size in part_sizes(len(records)):
        parts.append(records[start : start + size])
        start += size
    return parts


def encode_records(records: list[Record]) -> Iterator[dict[str, Any]]:
    """One part's samples; each JPEG decoded once (a corrupt file stops here, named)."""
    for record in records:
        image = open_jpeg(record.path)  # checked, and decoded at 1/8 scale: size is not kept
        with Image.open(record.path) as header:
            width, height = header.size
        if (width, height) != (record.width, record.height):
            raise ConfigError(
                f"{record.path}: the JPEG is {width}x{height} but its annotation "
                f"file says {record.width}x{record.height}; its boxes would be misplaced. "
                "Replace the image with the released one."
            )
        yield {
            "img": image,
            "img_id": record.image_id,
            "htot": record.height,
            "wtot": record.width,
            "bbox_sizes": record.boxes,
            "bbox_labels": record.labels,
        }


def categories_document(categories: list[Category], policy: Policy) -> dict[str, Any]:
    """What categories.json holds: entry ``i`` of ``labels`` is label ``i``."""
    labels: list[dict[str, Any]] = [{"label": BACKGROUND, "id": None, "name": "background"}]
    for i, category in enumerate(categories):
        labels.append(
            {
                "label": i + 1,
                "id": category.id,
                "name": category.name,
                "supercategory": category.supercategory,
            }
        )
    return {
        "labels": labels,
        "empty_images": "kept" if policy.keep_empty else "skipped",
        "crowd_boxes": "dropped" if policy.drop_crowd else "kept",
    }


def write_categories(out: str, document: dict[str, Any], force: bool) -> str:
    """Write ``<out>/categories.json`` (atomically; a remote object appears whole on upload).

    Different contents already there mean ``--out`` holds another conversion (other
    annotations, or other flags), whose kept splits would be described wrongly: refused unless
    ``--force``.
    """
    url = join_url(out, CATEGORIES_BASENAME)
    data = (json.dumps(document, indent=2) + "\n").encode()
    put_describing(
        url,
        data,
        force,
        "describes another conversion (other annotations, --keep-empty or --drop-crowd). "
        "Choose another --out, or pass --force to convert again over it.",
    )
    return url


def load_categories(root: str) -> list[dict[str, Any]]:
    """The label list a conversion wrote (``<root>/categories.json``; a local directory):
    entry ``i`` describes label ``i``."""
    with open(os.path.join(root, CATEGORIES_BASENAME), encoding="utf-8") as file:
        return list(json.load(file)["labels"])


def convert(raw: str, options: WriteOptions, policy: Policy | None = None) -> dict[str, str]:
    """Convert every split whose annotation file is in ``<raw>/annotations``; returns the
    categories.json and each split's merged index (path or URL)."""
    policy = policy or Policy()
    splits = [split for split in SPLITS if os.path.isfile(split_paths(raw, split)[1])]
    if not splits:
        raise ConfigError(
            f"No {split_paths(raw, 'train')[1]} or {split_paths(raw, 'val')[1]}: --in must be "
            "the COCO 2017 root holding annotations/, train2017/ and val2017/."
        )
    listed = {split: list_split(raw, split, policy) for split in splits}  # checked up front
    first, categories = splits[0], listed[splits[0]][0]
    for split in splits[1:]:
        if listed[split][0] != categories:
            raise ConfigError(
                f"{split_paths(raw, split)[1]}: its categories differ from "
                f"{split_paths(raw, first)[1]}'s; both splits must share one label mapping."
            )
    document = categories_document(categories, policy)
    done = {"categories": write_categories(options.out, document, options.force)}
    for split, (_, records) in listed.items():
        if not records:
            raise ConfigError(
                f"{split_paths(raw, split)[1]}: no image has annotations; pass --keep-empty to "
                "convert the images anyway."
            )
    with shared_workers(options.workers):
        for split, (_, records) in listed.items():
            done[split] = convert_split(
                plan_parts(records), encode_records, COLUMNS, options, split=split, unit="part"
            )
    return done
