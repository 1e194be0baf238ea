"""The physical limit: the same MDS shard bytes read with one plain ``pread`` per sample (one
copy from the page cache into a new bytes object). No decoding, no planning — what no streaming library can beat."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from benchmarks.libraries.base import Library, Unsupported


class RawRead(Library):
    name = "raw-read"
    format = "mds"
    modules = ("numpy",)

    def open(self, path, *, shuffle=False, batch_size=256, remote=None, cache_dir=None):  # type: ignore[no-untyped-def]
        if shuffle or remote is not None:
            raise Unsupported("raw-read is sequential and local")
        return sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(".mds"))

    def iterate(self, dataset: Any) -> Iterator[dict[str, Any]]:
        label = 0
        for name in dataset:
            fd = os.open(name, os.O_RDONLY)
            try:
                count = int(np.frombuffer(os.pread(fd, 4, 0), np.uint32)[0])
                offsets = np.frombuffer(os.pread(fd, 4 * (count + 1), 4), np.uint32).tolist()
                for start, end in itertools.pairwise(offsets):
                    # One copy, page cache -> a new bytes object: the least any reader does.
                    yield {"sample": os.pread(fd, end - start, start), "label": label}
                    label += 1
            finally:
                os.close(fd)


LIBRARY = RawRead()
