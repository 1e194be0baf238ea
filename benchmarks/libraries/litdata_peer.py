from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from benchmarks.libraries.base import Library, Transform


class LitData(Library):
    name = "litdata"
    format = "litdata"
    modules = ("litdata",)
    remote_modules = ("obstore", "obstore.store")

    def open(self, path, *, shuffle=False, batch_size=256, remote=None, cache_dir=None):  # type: ignore[no-untyped-def]
        import os

        from litdata import StreamingDataset

        if remote is not None:
            from litdata.streaming import downloader

            # The test server speaks plain http; litdata's obstore client takes no option for
            # that through the public API, so set the client option it builds stores with.
            downloader._OBSTORE_CLIENT_OPTIONS = {  # type: ignore[attr-defined]
                **downloader._OBSTORE_CLIENT_OPTIONS,  # type: ignore[attr-defined]
                "allow_http": "true",
            }
            return StreamingDataset(
                input_dir=remote,
                cache_dir=cache_dir,
                shuffle=shuffle,
                storage_options={"endpoint_url": os.environ["S3_ENDPOINT_URL"]},
            )
        return StreamingDataset(input_dir=path, shuffle=shuffle)

    def open_transformed(self, path: str, transform: Transform, *, batch_size: int) -> Any:
        from litdata import StreamingDataset

        return StreamingDataset(input_dir=path, shuffle=True, transform=transform)

    def loader(self, dataset: Any, *, batch_size: int, num_workers: int) -> Iterable[Any]:
        from litdata import StreamingDataLoader

        return StreamingDataLoader(dataset, batch_size=batch_size, num_workers=num_workers)

    def getitem(self, dataset: Any, index: int) -> dict[str, Any]:
        return dataset[index]  # type: ignore[no-any-return]

    def resume(
        self, dataset: Any, sample_in_epoch: int, *, batch_size: int
    ) -> Iterator[dict[str, Any]]:
        # What StreamingDataLoader.load_state_dict hands its dataset (one process, no workers).
        state = dataset.state_dict(sample_in_epoch, 1, batch_size)
        dataset.load_state_dict(state)
        return iter(dataset)


LIBRARY = LitData()
