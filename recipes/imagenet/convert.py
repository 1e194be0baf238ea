"""ImageNet (ILSVRC) folders → MDS.

The input is the standard layout: ``<in>/train/<wnid>/*.JPEG`` and ``<in>/val/<wnid>/*.JPEG``
(the validation images already sorted into class folders, e.g. by the usual ``valprep.sh``).
The classes are the sorted wnids of ``train/``; class ``i`` is ``classes[i]``, for both splits,
and the list is written to ``<out>/classes.json`` beside ``<out>/train`` and ``<out>/val``.
Every non-hidden file in a class folder is a sample, in sorted order by (class, file name).

Columns are mosaicml-streaming's ImageNet names and encodings, ``x: jpeg`` and ``y: int``, so
either library reads the other's output. ``x`` holds each file's bytes unchanged: the ``jpeg``
coder stores an image opened from a JPEG file by copying the file, never re-encoding it. Each
file is decoded once (at 1/8 scale, which still reads every byte) so a truncated or corrupt
image stops the conversion with its name instead of failing a training run weeks later.
(ILSVRC 2012's train set has one such file, ``n02105855_2933.JPEG``, a PNG: re-save it as
JPEG first; finished parts are kept when the command is run again.)

Parts (the units ``--workers`` share and a resume skips): the sorted (class, file) list cut
into runs of consecutive files of equal length (:func:`part_sizes`: at least ``MIN_PARTS``
parts, so that many workers are busy, and at most ``MAX_FILES_PER_PART`` files each, about
110 MB of ImageNet JPEGs, so a crash loses little). Equal parts load the workers evenly; one
part per class would not (train classes hold 732 to 1300 images) and would end every part in
a small partial shard (a val class's 50 images make one 6 MB shard). The cut depends only on
the number of files, so rerunning on the same folders reuses the finished parts; after the
folders changed, pass ``--force``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

from PIL import Image

from recipes.common.convert import WriteOptions, convert_split, shared_workers
from recipes.common.sidecar import put_describing
from streaming_lightning.errors import ConfigError
from streaming_lightning.storage.uploader import join_url

SPLITS = ("train", "val")
COLUMNS = {"x": "jpeg", "y": "int"}
CLASSES_BASENAME = "classes.json"
MIN_PARTS = 64
MAX_FILES_PER_PART = 1024
#: Pillow's format names for JPEG files (``MPO``: a JPEG with a multi-picture APP2 marker).
JPEG_FORMATS = ("JPEG", "MPO")

#: (path, class index): one sample to convert.
RawFile = tuple[str, int]


def _visible(names: list[str]) -> list[str]:
    return sorted(name for name in names if not name.startswith("."))


def find_classes(raw: str) -> list[str]:
    """The sorted wnids (class folders) of ``<raw>/train``."""
    train = os.path.join(raw, "train")
    if not os.path.isdir(train):
        raise ConfigError(
            f"No {train} folder: --in must be the ImageNet root holding train/<wnid>/*.JPEG "
            "(and val/<wnid>/*.JPEG)."
        )
    classes = [name for name in _visible(os.listdir(train)) if os.path.isdir(f"{train}/{name}")]
    if not classes:
        raise ConfigError(f"{train} has no class folders; expected train/<wnid>/*.JPEG.")
    return classes


def list_split(raw: str, split: str, classes: list[str]) -> list[RawFile]:
    """Every file of ``<raw>/<split>`` with its class index, sorted by (class, file name)."""
    root = os.path.join(raw, split)
    entries = _visible(os.listdir(root))
    stray = [name for name in entries if not os.path.isdir(os.path.join(root, name))]
    if stray:
        raise ConfigError(
            f"{os.path.join(root, stray[0])}: {split}/ must hold only class folders "
            f"({split}/<wnid>/*.JPEG); sort the images into folders named by their wnid first "
            "(for val, e.g. with the usual valprep.sh)."
        )
    index = {wnid: i for i, wnid in enumerate(classes)}
    unknown = [wnid for wnid in entries if wnid not in index]
    if unknown:
        raise ConfigError(
            f"{os.path.join(root, unknown[0])}: class {unknown[0]!r} is not a folder of "
            f"{os.path.join(raw, 'train')}; every {split} class needs its train folder (the "
            "class list comes from train/)."
        )
    files: list[RawFile] = []
    for wnid in entries:
        folder = os.path.join(root, wnid)
        files.extend(
            (os.path.join(folder, name), index[wnid])
            for name in _visible(os.listdir(folder))
            if os.path.isfile(os.path.join(folder, name))
        )
    return files


def part_sizes(files: int) -> list[int]:
    """How many consecutive files each part gets: as equal as possible, at least
    ``MIN_PARTS`` parts (when there are that many files), at most ``MAX_FILES_PER_PART`` each."""
    if files <= 0:
        return []
    parts = min(files, max(MIN_PARTS, -(-files // MAX_FILES_PER_PART)))
    base, extra = divmod(files, parts)
    return [base + 1] * extra + [base] * (parts - extra)


def plan_parts(files: list[RawFile]) -> list[list[RawFile]]:
    """``files`` cut into the parts :func:`part_sizes` gives, in order."""
    parts, start = [], 0
    for size in part_sizes(len(files)):
        parts.append(files[start : start + size])
        start += size
    return parts


def open_jpeg(path: str) -> Image.Image:
    """The JPEG at ``path`` as a PIL image, checked: its header (Pillow's ``verify``), that it
    is a JPEG, and that all of it decodes. Anything else is a ConfigError naming the file."""
    again = "then run the same command again (finished parts are kept)"
    resave = (
        "re-save it as JPEG (e.g. Image.open(path).convert('RGB').save(path, 'JPEG', "
        f"quality=95)) or delete it, {again}"
    )
    unreadable = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)
    try:
        with Image.open(path) as image:
            image.verify()
            kind = image.format
    except unreadable as err:
        raise ConfigError(f"{path}: not a readable image ({err}); delete it, {again}.") from None
    if kind not in JPEG_FORMATS:
        raise ConfigError(f"{path}: a {kind} image, not a JPEG; {resave}.")
    try:
        image = Image.open(path)
        image.draft("RGB", (1, 1))  # 1/8-scale decode: still reads every entropy-coded byte
        image.load()
    except unreadable as err:
        raise ConfigError(
            f"{path}: a corrupt or truncated JPEG ({err}); replace it with an intact copy or "
            f"delete it, {again}."
        ) from None
    return image


def encode_files(files: list[RawFile]) -> Iterator[dict[str, Any]]:
    """One part's samples. The image is passed, not its bytes: the ``jpeg`` coder copies the
    file it was opened from (no re-encoding), and only a PIL image satisfies its type check."""
    for path, label in files:
        yield {"x": open_jpeg(path), "y": label}


def write_classes(out: str, classes: list[str], force: bool) -> str:
    """Write ``<out>/classes.json`` (atomically; a remote object appears whole on upload).

    A different class list already there means ``--out`` holds another conversion, whose kept
    splits would be labelled by the wrong list: refused unless ``--force``.
    """
    url = join_url(out, CLASSES_BASENAME)
    data = (json.dumps(classes, indent=2) + "\n").encode()
    put_describing(
        url,
        data,
        force,
        f"holds another class list: {out} was converted from other folders. "
        "Choose another --out, or pass --force to convert again over it.",
    )
    return url


def load_classes(root: str) -> list[str]:
    """The class list a conversion wrote (``<root>/classes.json``; a local directory)."""
    with open(os.path.join(root, CLASSES_BASENAME), encoding="utf-8") as file:
        return list(json.load(file))


def convert(raw: str, options: WriteOptions) -> dict[str, str]:
    """Convert ``<raw>/train`` and, when present, ``<raw>/val``; returns the classes.json and
    each split's merged index (path or URL)."""
    classes = find_classes(raw)
    splits = [s for s in SPLITS if os.path.isdir(os.path.join(raw, s))]
    listed = {split: list_split(raw, split, classes) for split in splits}  # checked up front
    done = {"classes": write_classes(options.out, classes, options.force)}
    with shared_workers(options.workers):
        for split, files in listed.items():
            done[split] = convert_split(
                plan_parts(files), encode_files, COLUMNS, options, split=split, unit="part"
            )
    return done
