"""Small files kept next to a converted dataset (tokenizer.json, classes.json, packing counts),
read and written the same way whether the dataset is a local directory or a remote URL.

Local writes are atomic (temp file + rename), so a reader never sees half a file; remote
writes are single-object uploads, which object stores make visible all at once.
"""

from __future__ import annotations

import os
import tempfile

from streaming_lightning.errors import ConfigError
from streaming_lightning.fsutil import atomic_write
from streaming_lightning.storage.registry import is_remote
from streaming_lightning.storage.transfer import download_file, object_exists, upload_file


def put_bytes(location: str, data: bytes) -> None:
    """Write ``data`` to a local path or a remote URL."""
    if not is_remote(location):
        os.makedirs(os.path.dirname(os.path.abspath(location)), exist_ok=True)
        atomic_write(location, data, fsync=True)
        return
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, os.path.basename(location))
        with open(path, "wb") as file:
            file.write(data)
        upload_file(path, location)


def get_bytes(location: str) -> bytes | None:
    """A small local or remote file's content; None if it does not exist."""
    if not is_remote(location):
        try:
            with open(location, "rb") as file:
                return file.read()
        except FileNotFoundError:
            return None
    if not object_exists(location):
        return None
    with tempfile.TemporaryDirectory() as scratch:
        path = download_file(location, os.path.join(scratch, os.path.basename(location)))
        with open(path, "rb") as file:
            return file.read()


def put_describing(location: str, data: bytes, force: bool, conflict: str) -> None:
    """Write a file that describes the conversion at its side (classes.json,
    categories.json): the same content is left alone, different content means ``--out`` holds
    another conversion, whose kept splits it would then describe wrongly — refused with
    ``conflict`` unless ``force``."""
    existing = get_bytes(location)
    if existing is not None and existing != data and not force:
        raise ConfigError(f"{location} {conflict}")
    if existing != data:
        put_bytes(location, data)
