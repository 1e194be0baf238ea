"""``root/<class>/<image>`` (torchvision's ImageFolder layout) → MDS.

Classes are the sorted names of ``root``'s sub-folders, class ``i`` being ``classes[i]``, as
ImageFolder numbers them; the list is written to ``<out>/classes.json``. Samples are every
image file (ImageFolder's extensions, case-insensitive; other files are skipped and counted)
in (class, file name) order, stored as ``image`` (the file's bytes, unchanged: JPEG, PNG or
WebP alike), ``label`` and ``path`` (relative to ``root``). Each image is decoded once, so a
corrupt file stops the conversion naming it instead of failing a training run later.

Parts, resume and ``--workers`` work as in the ImageNet recipe (equal runs of consecutive
files: :func:`recipes.imagenet.convert.plan_parts`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from PIL import Image

from recipes.common.convert import WriteOptions, convert_split
from recipes.imagenet.convert import plan_parts, write_classes
from streaming_lightning.errors import ConfigError

COLUMNS = {"image": "bytes", "label": "int", "path": "str"}
#: torchvision's ImageFolder extensions.
EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

#: (path relative to the root, class index).
RawFile = tuple[str, int]


def find_files(root: str) -> tuple[list[str], list[RawFile], int]:
    """(classes, image files with their class, files skipped for their extension)."""
    if not os.path.isdir(root):
        raise ConfigError(f"No folder {root}: --in must hold one sub-folder per class.")
    classes = sorted(
        name
        for name in os.listdir(root)
        if not name.startswith(".") and os.path.isdir(os.path.join(root, name))
    )
    if not classes:
        raise ConfigError(f"{root} has no class folders; expected {root}/<class>/<image>.")
    files: list[RawFile] = []
    skipped = 0
    for label, name in enumerate(classes):
        for folder, _, names in sorted(os.walk(os.path.join(root, name))):  # sorted folders
            for file in sorted(names):
                if file.startswith("."):
                    continue
                if not file.lower().endswith(EXTENSIONS):
                    skipped += 1
                    continue
                files.append((os.path.relpath(os.path.join(folder, file), root), label))
    if not files:
        raise ConfigError(f"No images ({', '.join(EXTENSIONS)}) in the class folders of {root}.")
    return classes, files, skipped


def check_image(path: str) -> None:
    """Decode the image once (JPEG at 1/8 scale, which still reads every byte)."""
    try:
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            image.draft("RGB", (1, 1))
            image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ConfigError(
            f"{path}: not a readable image ({err}); replace or delete it, then run the same "
            "command again (finished parts are kept)."
        ) from None


def encode_files(task: tuple[str, list[RawFile]]) -> Iterator[dict[str, Any]]:
    """One part's samples (runs in a worker process)."""
    root, files = task
    for relative, label in files:
        path = os.path.join(root, relative)
        check_image(path)
        with open(path, "rb") as file:
            data = file.read()
        yield {"image": data, "label": label, "path": relative.replace(os.sep, "/")}


def convert(raw: str, options: WriteOptions, split: str | None = None) -> dict[str, Any]:
    classes, files, skipped = find_files(raw)
    write_classes(options.out, classes, options.force)
    tasks = [(raw, part) for part in plan_parts(files)]
    index = convert_split(tasks, encode_files, COLUMNS, options, split=split, unit="part")
    return {
        split or "dataset": index,
        "classes": len(classes),
        "images": len(files),
        "skipped_not_images": skipped,
    }
