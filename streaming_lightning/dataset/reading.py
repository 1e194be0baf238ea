"""Executing one worker's share of an epoch plan: fetch shards ahead of use, then decode.

The plan says which (shard, index) pairs a worker reads, chunk by chunk. ``EpochReader``
turns chunks into samples: it queues downloads of the shards the next chunks need (a small
thread pool, within the cache's limits), holds a shard's lease only while decoding from it,
and decodes each shard's samples of a chunk in one call, so fixed-size columns decode with a
few numpy operations however shuffled the order is. Two outputs:

- ``samples``: one dict per sample, in plan order (what ``StreamingDataset.__iter__`` yields);
- ``batch``: one dict of stacked arrays per batch (what a DataLoader would collate), built
  straight from the shard bytes when every column is fixed-size — no per-sample objects.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streaming_lightning.dataset.cache import ShardCache, ShardRef
from streaming_lightning.format.reader import ShardReader

Chunk = tuple[NDArray[np.int64], NDArray[np.int64]]  # (global shard, index within shard)


class EpochReader:
    def __init__(
        self,
        cache: ShardCache,
        ref: Callable[[int], ShardRef],
        chunks: Iterator[Chunk],
        *,
        prefetch_threads: int,
    ) -> None:
        self._cache = cache
        self._ref = ref
        self._chunks = chunks
        self._pool = (
            ThreadPoolExecutor(prefetch_threads, thread_name_prefix="predownload")
            if prefetch_threads
            else None
        )
        self._pending: dict[int, Future[Any]] = {}
        self._lock = threading.Lock()
        self._queued: list[Chunk] = []
        # Shards already read by this process; without a cache limit nothing is evicted, so
        # they need no prefetch task (a shuffled chunk touches every shard: without this,
        # every chunk would queue a no-op task per shard).
        self._resident: set[int] = set()

    # ------------------------------------------------------------------ plan and prefetch

    def _prefetch(self, shard: int) -> None:
        ref = self._ref(shard)
        with self._lock:
            ready = self._cache.reader(ref).is_ready()
        if not ready:
            self._cache.fetch(ref)

    def _plan_next(self) -> None:
        chunk = next(self._chunks, None)
        if chunk is None:
            return
        self._queued.append(chunk)
        if self._pool is None:
            return
        for shard in dict.fromkeys(chunk[0].tolist()):
            if shard in self._resident:
                continue
            if shard not in self._pending and self._cache.may_prefetch(
                self._ref(shard), len(self._pending)
            ):
                self._pending[shard] = self._pool.submit(self._prefetch, shard)

    def chunks(self) -> Iterator[Chunk]:
        """The plan's chunks in order, with the downloads of the next one already queued."""
        self._plan_next()
        self._plan_next()
        while self._queued:
            chunk = self._queued.pop(0)
            self._plan_next()
            yield chunk

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._cache.release_all()

    # ------------------------------------------------------------------ decoding

    @contextmanager
    def _open(self, shard: int) -> Iterator[ShardReader]:
        """The shard's reader, leased while the block runs (whatever the block takes out of
        it must be a copy: once released, another process may evict the shard)."""
        future = self._pending.pop(shard, None)
        if future is not None:
            future.result()
        ref = self._ref(shard)
        with self._lock:
            reader = self._cache.ensure(ref)
        if self._cache.cache_limit is None:
            self._resident.add(shard)
        try:
            yield reader
        finally:
            with self._lock:
                self._cache.release(ref)

    def samples(self, shards: NDArray[np.int64], within: NDArray[np.int64]) -> list[Any]:
        """Decoded samples at (shard, index) pairs, in the given order."""
        out: list[Any] = [None] * len(shards)
        for positions, shard, indices in _group_by_shard(shards, within):
            with self._open(shard) as reader:
                decoded = reader.get_samples(indices)
            if positions is None:
                return decoded
            for position, sample in zip(positions.tolist(), decoded):
                out[position] = sample
        return out

    def stream(self, shards: NDArray[np.int64], within: NDArray[np.int64]) -> Iterator[Any]:
        """Samples at (shard, index) pairs, decoded and yielded one at a time: for large or
        variable-size samples, where holding a batch of decoded samples costs more (memory,
        allocator churn) than the per-sample Python it would save. The shard being read is
        leased until the next one is needed."""
        current, decode, release = -1, None, None
        try:
            for shard, index in zip(shards.tolist(), within.tolist()):
                if shard != current:
                    if release is not None:
                        release.__exit__(None, None, None)
                    release = self._open(shard)
                    reader = release.__enter__()
                    decoder = getattr(reader, "sample_decoder", None)
                    decode = decoder() if decoder is not None else reader.__getitem__
                    current = shard
                yield decode(index)  # type: ignore[misc]
        finally:
            if release is not None:
                release.__exit__(None, None, None)

    def batch(self, shards: NDArray[np.int64], within: NDArray[np.int64]) -> dict[str, Any]:
        """The samples at (shard, index) pairs as one dict of stacked arrays (fixed-size
        columns only; see ``MDSReader.get_rows`` and ``decode_batch``)."""
        rows: NDArray[np.uint8] | None = None
        decoder: Any = None
        for positions, shard, indices in _group_by_shard(shards, within):
            with self._open(shard) as reader:
                got = reader.get_rows(indices)  # type: ignore[attr-defined]
                decoder = reader
            if positions is None:
                rows = got
                break
            if rows is None:
                rows = np.empty((len(shards), got.shape[1]), np.uint8)
            rows[positions] = got
        assert rows is not None
        return decoder.decode_batch(rows)  # type: ignore[no-any-return]


def _group_by_shard(
    shards: NDArray[np.int64], within: NDArray[np.int64]
) -> Iterator[tuple[NDArray[np.int64] | None, int, NDArray[np.int64]]]:
    """(positions in the input, shard, indices within it) per distinct shard; positions is
    None when the whole input is one shard (the common unshuffled case: no reordering)."""
    if len(shards) == 0:
        return
    first = int(shards[0])
    if (shards == first).all():
        yield None, first, within
        return
    order = np.argsort(shards, kind="stable")
    bounds = np.flatnonzero(np.diff(shards[order])) + 1
    for group in np.split(order, bounds):
        yield group, int(shards[group[0]]), within[group]
