from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from benchmarks.libraries.base import Library


class Ours(Library):
    name = "streaming-lightning"
    format = "mds"
    modules = ("streaming_lightning",)

    def open(self, path, *, shuffle=False, batch_size=256, remote=None, cache_dir=None):  # type: ignore[no-untyped-def]
        from streaming_lightning import StreamingDataset

        if remote is not None:
            return StreamingDataset(
                remote=remote, local=cache_dir, shuffle=shuffle, batch_size=batch_size
            )
        return StreamingDataset(local=path, shuffle=shuffle, batch_size=batch_size)

    def loader(self, dataset: Any, *, batch_size: int, num_workers: int) -> Iterable[Any]:
        from streaming_lightning.dataset import BatchesLoader

        return BatchesLoader(dataset, num_workers=num_workers)

    def getitem(self, dataset: Any, index: int) -> dict[str, Any]:
        return dataset[index]  # type: ignore[no-any-return]

    def resume(
        self, dataset: Any, sample_in_epoch: int, *, batch_size: int
    ) -> Iterator[dict[str, Any]]:
        state = dataset.state_dict(sample_in_epoch, True)
        dataset.load_state_dict({**state, "epoch": 0, "sample_in_epoch": sample_in_epoch})
        return iter(dataset)


LIBRARY = Ours()
