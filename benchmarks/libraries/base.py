"""The interface every benchmarked library implements.

Samples come back as dicts with the same keys whatever the library (``tokens`` or ``image``,
and ``label``), so a case can check that every library really produced every sample.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

#: Per-sample work done in the loader's workers (decode, augment): sample dict -> sample dict.
Transform = Callable[[dict[str, Any]], dict[str, Any]]


class Unsupported(Exception):
    """The library has no such feature (e.g. random access in webdataset); reported as '-'."""


class Library:
    name = ""
    format = ""  # which on-disk format it reads: a benchmarks.data.WRITERS or SOURCES key
    modules: tuple[str, ...] = ()  # imported before any clock starts (import time is not I/O)
    #: The storage SDK the library uses for s3:// (imported lazily by it; preloaded too).
    remote_modules: tuple[str, ...] = ()

    def preload(self) -> None:
        import importlib

        for module in (*self.modules, *self.remote_modules):
            importlib.import_module(module)

    def open(
        self,
        path: str,
        *,
        shuffle: bool = False,
        batch_size: int = 256,
        remote: str | None = None,
        cache_dir: str | None = None,
    ) -> Any:
        """A dataset over local ``path``; or over ``remote`` cached into ``cache_dir``."""
        raise NotImplementedError

    def open_transformed(self, path: str, transform: Transform, *, batch_size: int) -> Any:
        """A shuffled dataset over local ``path`` whose samples pass through ``transform`` (in
        the loader's workers), hooked in the way the library's users add per-sample work: a
        subclass's ``get_item``, a ``transform`` argument, a ``map`` stage."""
        raise Unsupported(f"{self.name} has no per-sample transform hook here")

    def iterate(self, dataset: Any) -> Iterator[dict[str, Any]]:
        return iter(dataset)

    def loader(self, dataset: Any, *, batch_size: int, num_workers: int) -> Iterable[Any]:
        from torch.utils.data import DataLoader

        return DataLoader(dataset, batch_size=batch_size, num_workers=num_workers)

    def getitem(self, dataset: Any, index: int) -> dict[str, Any]:
        raise Unsupported(f"{self.name} has no random access")

    def resume(
        self, dataset: Any, sample_in_epoch: int, *, batch_size: int
    ) -> Iterator[dict[str, Any]]:
        """An iterator that continues the (single-process) epoch after ``sample_in_epoch``
        samples, the way the library's users resume."""
        raise Unsupported(f"{self.name} cannot resume mid-epoch")


class MosaicStyle(Library):
    """A library with mosaicml-streaming's ``StreamingDataset`` API (ours keeps it on purpose):
    the same constructor, ``ds[i]`` and ``state_dict(num_samples, from_beginning)`` resume."""

    format = "mds"

    def dataset_class(self) -> Any:
        raise NotImplementedError

    def open(self, path, *, shuffle=False, batch_size=256, remote=None, cache_dir=None):  # type: ignore[no-untyped-def]
        cls = self.dataset_class()
        if remote is not None:
            return cls(remote=remote, local=cache_dir, shuffle=shuffle, batch_size=batch_size)
        return cls(local=path, shuffle=shuffle, batch_size=batch_size)

    def open_transformed(self, path: str, transform: Transform, *, batch_size: int) -> Any:
        # Both libraries' documented hook: a subclass overriding get_item (mosaicml-streaming's
        # own StreamingImageNet, ours recipes.imagenet.StreamingImageNet).
        class Transformed(self.dataset_class()):  # type: ignore[misc]
            def get_item(self, index: int) -> dict[str, Any]:
                return transform(super().get_item(index))

        return Transformed(local=path, shuffle=True, batch_size=batch_size)

    def getitem(self, dataset: Any, index: int) -> dict[str, Any]:
        return dataset[index]  # type: ignore[no-any-return]

    def resume(
        self, dataset: Any, sample_in_epoch: int, *, batch_size: int
    ) -> Iterator[dict[str, Any]]:
        state = dataset.state_dict(sample_in_epoch, True)
        dataset.load_state_dict({**state, "epoch": 0, "sample_in_epoch": sample_in_epoch})
        return iter(dataset)
