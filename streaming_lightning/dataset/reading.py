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

import itertools
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streaming_lightning.dataset.cache import ShardCache, ShardRef
from streaming_lightning.dataset.ranged import RangedReads
from streaming_lightning.format.reader import ShardReader

Chunk = tuple[NDArray[np.int64], NDArray[np.int64]]  # (global shard, index within shard)

#: Samples read by range per round while shards download: after each round, shards whose
#: download landed are read locally again.
RANGED_STEP = 64
#: How long closing a reader waits for downloads already in flight.
CLOSE_WAIT_S = 2.0
#: Samples at the start of an iteration whose bytes the kernel is asked to read at once.
ADVISED = 256


class EpochReader:
    def __init__(
        self,
        cache: ShardCache,
        ref: Callable[[int], ShardRef],
        chunks: Iterator[Chunk],
        *,
        prefetch_threads: int,
        ranged: RangedReads | None = None,
    ) -> None:
        self._cache = cache
        self._ranged = ranged
        self._ref = ref
        self._chunks = chunks
        self._pool = (
            ThreadPoolExecutor(prefetch_threads, thread_name_prefix="predownload")
            if prefetch_threads
            else None
        )
        self.pid = os.getpid()  # caches, maps and locks are per process
        self._pending: dict[int, Future[Any]] = {}
        self._lock = threading.Lock()
        self._queued: list[Chunk] = []
        # Shards already read by this process; without a cache limit nothing is evicted, so
        # they need no prefetch task (a shuffled chunk touches every shard: without this,
        # every chunk would queue a no-op task per shard).
        self._resident: set[int] = set()
        self._advised = False

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
        """Stop prefetching. Downloads not started are cancelled; those in flight get
        :data:`CLOSE_WAIT_S` to land, then finish in the background (each bounded by its
        download timeout): leaving a loop early must not wait for a slow link."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            wait(list(self._pending.values()), timeout=CLOSE_WAIT_S)
        if self._ranged is not None:
            self._ranged.close()
        self._cache.release_all()

    def _downloading(self, shard: int) -> bool:
        """Whether the shard's prefetch is still running (its samples may come by range)."""
        future = self._pending.get(shard)
        if future is None or future.done() or self._ranged is None:
            return False
        ref = self._ref(shard)
        return self._ranged.covers(ref, self._cache.reader(ref))

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

    def make_local(self, shards: NDArray[np.int64]) -> None:
        """Wait until every shard named is in the local cache (fetching it if its prefetch
        has not), without reading from it."""
        for shard in dict.fromkeys(shards.tolist()):
            with self._open(shard):
                pass

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
        leased until the next one is needed.

        While shards of the chunk are still downloading (a cold start), its samples come a
        few at a time by byte range from the remote files (see ``ranged``) until the
        downloads land."""
        if self._ranged is not None:
            done = 0
            while done < len(shards):
                part = slice(done, done + RANGED_STEP)
                waiting = {s for s in dict.fromkeys(shards[part].tolist()) if self._downloading(s)}
                if not waiting:
                    break
                yield from self._by_range(shards[part], within[part], waiting)
                done += RANGED_STEP
            shards, within = shards[done:], within[done:]
        if not self._advised:
            # The first samples of an iteration are the ones least likely to be in the page
            # cache (a fresh job, a resume): ask for all of them at once so the disk reads
            # overlap instead of queueing one by one. Later, data is either warm (advice
            # would only cost ~2 us a sample) or streamed in order (kernel readahead).
            self._advised = True
            for _, shard, indices in _group_by_shard(shards[:ADVISED], within[:ADVISED]):
                with self._open(shard) as reader:
                    reader.will_need(indices)
        # Runs of samples from one shard decode through a C-level map(): no per-sample
        # Python beyond the decoder itself (the unshuffled case is one run per shard).
        if not len(shards):
            return
        starts = [0, *(np.flatnonzero(shards[1:] != shards[:-1]) + 1).tolist(), len(shards)]
        for begin, end in itertools.pairwise(starts):
            with self._open(int(shards[begin])) as reader:
                decoder = getattr(reader, "sample_decoder", None)
                decode = decoder() if decoder is not None else reader.__getitem__
                yield from map(decode, within[begin:end].tolist())

    def _by_range(
        self, shards: NDArray[np.int64], within: NDArray[np.int64], waiting: set[int]
    ) -> list[Any]:
        """Samples at (shard, index) pairs, those of ``waiting`` shards read by range."""
        assert self._ranged is not None
        remote = np.isin(shards, np.fromiter(waiting, np.int64, len(waiting)))
        out: list[Any] = [None] * len(shards)
        local = np.flatnonzero(~remote)
        if len(local):
            for position, sample in zip(local.tolist(), self.samples(shards[local], within[local])):
                out[position] = sample
        far = np.flatnonzero(remote).tolist()
        wanted = []
        for position in far:
            ref = self._ref(int(shards[position]))
            wanted.append((ref, self._cache.reader(ref), int(within[position])))
        for position, (_, reader, index), data in zip(far, wanted, self._ranged.read(wanted)):
            out[position] = reader.decode_sample(data, index)
        return out

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
