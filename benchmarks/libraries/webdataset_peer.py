from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from benchmarks.libraries.base import Library, Transform


def _sample(raw: dict[str, Any]) -> dict[str, Any]:
    if "tokens.npy" in raw:
        return {"tokens": raw["tokens.npy"], "label": raw["cls"]}
    if "jpg" in raw:  # the bytes as stored: decode() adds no image handler unless asked
        return {"image": raw["jpg"], "label": raw["cls"], "index": int(raw["__key__"])}
    return {"image": raw["image.bin"], "label": raw["cls"]}


class WebDataset(Library):
    name = "webdataset"
    format = "webdataset"
    modules = ("webdataset",)

    def _urls(self, path: str, remote: str | None) -> list[str]:
        names = sorted(f for f in os.listdir(path) if f.endswith(".tar"))
        if remote is None:
            return [os.path.join(path, name) for name in names]
        # webdataset streams remote tars through a shell pipe; moto serves plain HTTP GETs.
        return [f"pipe:curl -s --fail {remote}/{name}" for name in names]

    def open(self, path, *, shuffle=False, batch_size=256, remote=None, cache_dir=None, skip=0):  # type: ignore[no-untyped-def]
        import webdataset as wds

        pipeline = wds.WebDataset(
            self._urls(path, remote),
            shardshuffle=100 if shuffle else False,
            empty_check=False,
            workersplitter=wds.split_by_worker,
        )
        if skip:
            pipeline = pipeline.slice(skip, None)
        if shuffle:
            pipeline = pipeline.shuffle(1000)
        return pipeline.decode().map(_sample)

    def open_transformed(self, path: str, transform: Transform, *, batch_size: int) -> Any:
        return self.open(path, shuffle=True).map(transform)

    def resume(
        self, dataset: Any, sample_in_epoch: int, *, batch_size: int
    ) -> Iterator[dict[str, Any]]:
        # webdataset keeps no position: its users skip the consumed samples on restart.
        return iter(dataset.slice(sample_in_epoch, None))


LIBRARY = WebDataset()
