"""The baseline every image pipeline starts from: torchvision's ``ImageFolder`` pattern (a
map-style dataset listing ``root/<class>/*`` once, one file read per item, shuffled by the
DataLoader's sampler), written without torchvision, which must not be needed to read files."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from benchmarks import data
from benchmarks.libraries.base import Library, Transform, Unsupported


class ImageFolderDataset:
    """``dataset[i]`` is the i-th file of ``root`` in (class, name) order as a sample dict
    (``image`` bytes, ``label`` class, ``index`` from the file name), transformed if asked."""

    def __init__(self, root: str, transform: Transform | None = None, shuffle: bool = False):
        self.files = data.image_files(root)
        self.transform = transform
        self.shuffle = shuffle

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict[str, Any]:
        path, label, index = self.files[i]
        with open(path, "rb") as file:
            sample = {"image": file.read(), "label": label, "index": index}
        return self.transform(sample) if self.transform else sample


class ImageFolder(Library):
    name = "imagefolder"
    format = "imagefolder"
    modules = ("torch",)

    def open(self, path, *, shuffle=False, batch_size=256, remote=None, cache_dir=None):  # type: ignore[no-untyped-def]
        if remote is not None:
            raise Unsupported("imagefolder reads local files")
        return ImageFolderDataset(path, shuffle=shuffle)

    def open_transformed(self, path: str, transform: Transform, *, batch_size: int) -> Any:
        return ImageFolderDataset(path, transform, shuffle=True)

    def loader(self, dataset: Any, *, batch_size: int, num_workers: int) -> Iterable[Any]:
        from torch.utils.data import DataLoader

        return DataLoader(
            dataset, batch_size=batch_size, shuffle=dataset.shuffle, num_workers=num_workers
        )

    def getitem(self, dataset: Any, index: int) -> dict[str, Any]:
        return dataset[index]  # type: ignore[no-any-return]


LIBRARY = ImageFolder()
