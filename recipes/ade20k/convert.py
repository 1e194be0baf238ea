"""ADE20K (the MIT Scene Parsing release, ``ADEChallengeData2016``) → MDS.

The input is the release as unzipped: ``ADEChallengeData2016/images/{training,validation}/
ADE_{train,val}_<uid>.jpg`` and ``ADEChallengeData2016/annotations/{training,validation}/
ADE_{train,val}_<uid>.png`` (``<uid>``: 8 digits); ``--in`` is that folder or its parent.
The annotations are 8-bit single-channel PNGs: 0 is "other" (no label), 1-150 the classes.
``training`` becomes split ``train`` and ``validation`` split ``val`` (when present), the names
mosaicml-streaming's converter writes, each sorted by uid.

Columns are mosaicml-streaming's, ``uid: bytes`` (the 8 digits in ASCII), ``x: jpeg`` and
``y: png``, so either library reads the other's output. ``x`` and ``y`` hold the files' bytes
unchanged: the ``jpeg`` coder copies the file an image was opened from, and the annotation is
passed as a :class:`StoredPNG`, a PNG image that saves as its file's bytes — re-encoding it
would only cost time and change nothing the model sees. Every pair is decoded once, so a
corrupt file, a mask that is not 8-bit labels 0-150, or a mask whose size is not its image's
stops the conversion with the file's name instead of failing a training run later.

Like mosaicml-streaming's converter, the four training images it lists as corrupt
(:data:`SKIPPED_TRAIN_UIDS`) are left out, so a full conversion holds the same 20,206 training
and 2,000 validation samples as a conversion by that library.

Parts (the units ``--workers`` share and a resume skips) are runs of consecutive pairs of equal
length, cut as ImageNet's are (:func:`recipes.imagenet.convert.part_sizes`: at least 64 parts,
at most 1,024 pairs, about 120 MB of ADE20K, each). The cut depends only on the number of
pairs, so rerunning on the same folders reuses the finished parts; after the folders changed,
pass ``--force``.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from typing import IO, Any

import numpy as np
from PIL import Image, PngImagePlugin

from recipes.common.convert import WriteOptions, convert_split, shared_workers
from recipes.imagenet.convert import open_jpeg, part_sizes
from streaming_lightning.errors import ConfigError

RELEASE = "ADEChallengeData2016"
#: Output split → the release's folder name.
SPLITS = {"train": "training", "val": "validation"}
COLUMNS = {"uid": "bytes", "x": "jpeg", "y": "png"}
#: Labels in an annotation: 0 ("other", ignored in training) and the classes 1..NUM_CLASSES.
NUM_CLASSES = 150
#: Training uids mosaicml-streaming's converter leaves out as corrupt (train has 20,210 files).
SKIPPED_TRAIN_UIDS = frozenset({"00003020", "00001701", "00013508", "00008455"})
#: Annotation modes holding one label per pixel (the release's are ``L``).
MASK_MODES = ("L", "P")

#: (uid, image path, annotation path): one sample to convert.
Pair = tuple[str, str, str]

_AGAIN = "then run the same command again (finished parts are kept)"
_UNREADABLE = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def find_release(raw: str) -> str:
    """The ``ADEChallengeData2016`` folder: ``raw`` itself or the one inside it."""
    for root in (raw, os.path.join(raw, RELEASE)):
        if os.path.isdir(os.path.join(root, "images")) and os.path.isdir(
            os.path.join(root, "annotations")
        ):
            return root
    raise ConfigError(
        f"{raw}: no images/ and annotations/ folders here or in {os.path.join(raw, RELEASE)}; "
        f"--in must be the unzipped {RELEASE} folder (holding images/training, "
        "annotations/training, ...) or its parent."
    )


def _folder(root: str, kind: str, split: str) -> str:
    return os.path.join(root, kind, SPLITS[split])


def _uids(folder: str, split: str, extension: str) -> dict[str, str]:
    """uid → path of every file in ``folder``, each checked to be ``ADE_<split>_<uid>.<ext>``."""
    pattern = re.compile(rf"ADE_{split}_(\d{{8}})\.{extension}")
    found = {}
    for name in sorted(os.listdir(folder)):
        if name.startswith("."):
            continue
        match = pattern.fullmatch(name)
        path = os.path.join(folder, name)
        if match is None or not os.path.isfile(path):
            raise ConfigError(
                f"{path}: not a file named ADE_{split}_<8 digits>.{extension}; "
                f"{folder} must hold only the release's files. Move it elsewhere, {_AGAIN}."
            )
        found[match.group(1)] = path
    return found


def list_split(root: str, split: str) -> list[Pair]:
    """Every (uid, image, annotation) of ``split`` in uid order; an image without its
    annotation, or an annotation without its image, is a ConfigError naming the file."""
    images_dir = _folder(root, "images", split)
    annotations_dir = _folder(root, "annotations", split)
    if not os.path.isdir(annotations_dir):
        raise ConfigError(
            f"{annotations_dir}: missing, but {images_dir} exists; every image needs its "
            f"annotation PNG (unzip the whole {RELEASE} release)."
        )
    images = _uids(images_dir, split, "jpg")
    annotations = _uids(annotations_dir, split, "png")
    for uid, path in images.items():
        if uid not in annotations:
            expected = os.path.join(annotations_dir, f"ADE_{split}_{uid}.png")
            raise ConfigError(
                f"{path}: no annotation {expected}; restore it, or delete the image, {_AGAIN}."
            )
    for uid, path in annotations.items():
        if uid not in images:
            expected = os.path.join(images_dir, f"ADE_{split}_{uid}.jpg")
            raise ConfigError(
                f"{path}: no image {expected}; restore it, or delete the annotation, {_AGAIN}."
            )
    skipped = sorted(SKIPPED_TRAIN_UIDS & images.keys()) if split == "train" else []
    if skipped:
        print(
            f"{split}: leaving out {len(skipped)} image(s) mosaicml-streaming's converter lists as "
            f"corrupt: {', '.join(skipped)}",
            file=sys.stderr,
        )
    return [(uid, images[uid], annotations[uid]) for uid in sorted(images) if uid not in skipped]


def plan_parts(pairs: list[Pair]) -> list[list[Pair]]:
    """``pairs`` cut into the runs ImageNet's :func:`part_sizes` gives, in order."""
    parts, start = [], 0
    for size in part_sizes(len(pairs)):
        parts.append(pairs[start : start + size])
        start += size
    return parts


class StoredPNG(PngImagePlugin.PngImageFile):
    """A PNG opened from a file that saves, as PNG, to that file's bytes.

    The ``png`` coder stores an image by saving it as PNG; this makes it store the original
    file unchanged (other formats, or save options, still go through Pillow's encoder).
    """

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path

    def save(self, fp: Any, format: str | None = None, **params: Any) -> None:
        if (format or "").upper() != "PNG" or params or isinstance(fp, (str, os.PathLike)):
            super().save(fp, format, **params)
            return
        stream: IO[bytes] = fp
        with open(self.path, "rb") as file:
            stream.write(file.read())


def open_annotation(path: str, image_size: tuple[int, int], image_path: str) -> StoredPNG:
    """The annotation at ``path``, checked: a PNG of one label (0..NUM_CLASSES) per pixel,
    decodable in full, the size of its image. Anything else is a ConfigError naming it."""
    try:
        with Image.open(path) as probe:
            probe.verify()
        mask = StoredPNG(path)
        mask.load()
    except _UNREADABLE as err:
        raise ConfigError(
            f"{path}: not a readable PNG ({err}); replace it with an intact copy, or delete it "
            f"and its image, {_AGAIN}."
        ) from None
    if mask.mode not in MASK_MODES:
        raise ConfigError(
            f"{path}: a {mask.mode} image, not an 8-bit single-channel label map; ADE20K "
            f"annotations hold one class (0-{NUM_CLASSES}) per pixel ({RELEASE}'s format; the "
            "full ADE20K release's colour-coded masks must be converted to it first)."
        )
    top = int(np.asarray(mask).max(initial=0))
    if top > NUM_CLASSES:
        raise ConfigError(
            f"{path}: holds label {top}, but ADE20K's are 0-{NUM_CLASSES}; is it an annotation "
            f"of the {RELEASE} release?"
        )
    if mask.size != image_size:
        raise ConfigError(
            f"{path}: {mask.size[0]}x{mask.size[1]} pixels, but its image {image_path} is "
            f"{image_size[0]}x{image_size[1]}; a mask must cover its image pixel for pixel. "
            f"Replace the pair with intact copies, or delete both, {_AGAIN}."
        )
    return mask


def _jpeg_size(path: str) -> tuple[int, int]:
    # open_jpeg decodes at a reduced scale, which shrinks its size: read the header's.
    with Image.open(path) as image:
        return image.size


def encode_pairs(pairs: list[Pair]) -> Iterator[dict[str, Any]]:
    """One part's samples. Images are passed, not bytes: the coders copy the files they were
    opened from (no re-encoding), and only PIL images satisfy their type checks."""
    for uid, image_path, annotation_path in pairs:
        image = open_jpeg(image_path)
        mask = open_annotation(annotation_path, _jpeg_size(image_path), image_path)
        yield {"uid": uid.encode("ascii"), "x": image, "y": mask}


def convert(raw: str, options: WriteOptions) -> dict[str, str]:
    """Convert the training and (when present) validation pairs of the release at ``raw``;
    returns each split's merged index (path or URL)."""
    root = find_release(raw)
    splits = [s for s in SPLITS if os.path.isdir(_folder(root, "images", s))]
    if "train" not in splits:
        raise ConfigError(
            f"{_folder(root, 'images', 'train')}: missing; --in must be the {RELEASE} release "
            "with images/training and annotations/training."
        )
    listed = {split: list_split(root, split) for split in splits}  # all checked up front
    with shared_workers(options.workers):
        return {
            split: convert_split(
                plan_parts(pairs), encode_pairs, COLUMNS, options, split=split, unit="part"
            )
            for split, pairs in listed.items()
        }
