from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from benchmarks.libraries.base import MosaicStyle


class Ours(MosaicStyle):
    name = "streaming-lightning"
    modules = ("streaming_lightning",)
    remote_modules = ("streaming_lightning.storage.s3",)  # boto3

    def dataset_class(self) -> Any:
        from streaming_lightning import StreamingDataset

        return StreamingDataset

    def loader(self, dataset: Any, *, batch_size: int, num_workers: int) -> Iterable[Any]:
        from streaming_lightning.dataset import BatchesLoader

        return BatchesLoader(dataset, num_workers=num_workers)


LIBRARY = Ours()
