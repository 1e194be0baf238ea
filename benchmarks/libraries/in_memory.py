"""The limit for per-sample work: the ImageFolder-style map dataset over every file's bytes read
into memory before the clock, so a loader pays only for the transform and the DataLoader — what
no reader of stored images can beat (``raw-read`` is the same idea for plain iteration)."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.libraries.base import Transform, Unsupported
from benchmarks.libraries.imagefolder import ImageFolder, ImageFolderDataset


class InMemoryDataset(ImageFolderDataset):
    """Every file's bytes in one buffer (one object: forked workers reading it dirty no pages,
    as they would by touching the reference counts of thousands of ``bytes``)."""

    def __init__(self, root: str, transform: Transform | None = None, shuffle: bool = False):
        super().__init__(root, transform, shuffle)
        blobs = []
        for path, _, _ in self.files:
            with open(path, "rb") as file:
                blobs.append(file.read())
        self.offsets = np.cumsum([0, *(len(blob) for blob in blobs)]).tolist()
        self.buffer = b"".join(blobs)

    def __getitem__(self, i: int) -> dict[str, Any]:
        _, label, index = self.files[i]
        image = self.buffer[self.offsets[i] : self.offsets[i + 1]]
        sample = {"image": image, "label": label, "index": index}
        return self.transform(sample) if self.transform else sample


class InMemory(ImageFolder):
    name = "in-memory"

    def open(self, path, *, shuffle=False, batch_size=256, remote=None, cache_dir=None):  # type: ignore[no-untyped-def]
        if remote is not None:
            raise Unsupported("in-memory reads local files")
        return InMemoryDataset(path, shuffle=shuffle)

    def open_transformed(self, path: str, transform: Transform, *, batch_size: int) -> Any:
        return InMemoryDataset(path, transform, shuffle=True)


LIBRARY = InMemory()
