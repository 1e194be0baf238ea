"""A small cache (issue #11, guarantee 5): with cache_limit = two shards per worker, a shard-local
shuffle streams at a stated fraction of an unlimited cache; a shuffle that reads from more
shards at once than the cache holds is announced by a CacheThrashWarning, not discovered as a
100x slowdown."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streaming_lightning import MDSWriter
from streaming_lightning.dataset import BatchesLoader, StreamingDataset
from streaming_lightning.errors import CacheThrashWarning

#: The floor asserted (thrashing would be ~0.01); docs/reliability.md reports the measured ratio.
KEPT_FRACTION = 0.2


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, int]:
    path = tmp_path_factory.mktemp("cache-throughput") / "remote"
    with MDSWriter(
        out=str(path), columns={"x": "int", "v": "ndarray:uint8:1000"}, size_limit=1 << 19
    ) as writer:
        for i in range(24_000):
            writer.write({"x": i, "v": np.full(1000, i % 251, np.uint8)})
    largest = max(f.stat().st_size for f in path.iterdir() if f.suffix == ".mds")
    return str(path), largest


def _rate(remote: str, cache: Path, limit: int | None, **shuffle: Any) -> float:
    dataset = StreamingDataset(
        remote=remote, local=str(cache), shuffle=True, batch_size=64, cache_limit=limit, **shuffle
    )
    started, seen = time.perf_counter(), []
    for batch in BatchesLoader(dataset, num_workers=2):
        seen.extend(batch["x"].tolist())
    assert sorted(set(seen)) == list(range(24_000)), "every sample arrived"
    return len(seen) / (time.perf_counter() - started)


@pytest.mark.slow
def test_two_shards_per_worker_keep_most_of_the_throughput(
    remote: tuple[str, int], tmp_path: Path
) -> None:
    path, largest = remote
    shuffle = {"shuffle_algo": "py1s", "num_canonical_nodes": 1}
    unlimited = _rate(path, tmp_path / "a", None, **shuffle)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheThrashWarning)  # this shuffle fits the cache
        small = _rate(path, tmp_path / "b", 2 * 2 * largest, **shuffle)
    print(f"unlimited {unlimited:,.0f}/s, two shards per worker {small:,.0f}/s")
    assert small >= KEPT_FRACTION * unlimited
    left = sum(f.stat().st_size for f in (tmp_path / "b").iterdir() if f.suffix == ".mds")
    assert left <= 2 * 2 * largest + 3 * largest  # the limit, plus in-flight fetches


def test_a_shuffle_wider_than_the_cache_is_announced(
    remote: tuple[str, int], tmp_path: Path
) -> None:
    path, largest = remote
    dataset = StreamingDataset(
        remote=path, local=str(tmp_path / "c"), shuffle=True, batch_size=8, cache_limit=3 * largest
    )  # py1e with its default block: the whole dataset is one block
    with pytest.warns(CacheThrashWarning, match=r"holds about 3 shards .* reads from about \d+"):
        next(iter(dataset))
    fitting = StreamingDataset(
        remote=path,
        local=str(tmp_path / "d"),
        shuffle=True,
        batch_size=8,
        cache_limit=3 * largest,
        shuffle_algo="py1s",
        num_canonical_nodes=1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheThrashWarning)
        next(iter(fitting))
    assert os.path.isdir(tmp_path / "d")
