"""Reading single samples of a shard that is still downloading, by byte range.

A cold start (or a resume into an empty cache) would otherwise wait for whole shards: with a
global shuffle the first batch touches many of them — with 64 MB shards of images, hundreds of
MB before the first sample. While a shard's download runs, the samples the next batch needs
are read straight out of the remote file with ranged GETs, many at once, and decoded like
local ones; once the download lands, reading goes back to the local copy.

Only where a range means something and is safe to use:
- uncompressed shards with an offset table (MDS): a range of a compressed file is not a sample;
- streams without ``validate_hash``: a range cannot be checked against the whole file's digest;
- large samples (mean >= ``MIN_MEAN_SAMPLE``): for small ones a request per sample costs more
  than fetching the shard.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from streaming_lightning.dataset.cache import ShardRef
from streaming_lightning.dataset.stream import Stream
from streaming_lightning.format.reader import ShardReader
from streaming_lightning.storage.uploader import join_url

#: Mean stored sample size from which samples are worth a request each (below it, the shard's
#: download delivers a batch sooner than hundreds of small requests).
MIN_MEAN_SAMPLE = 16 << 10
#: Requests in flight at once: object stores serve ranges in parallel, latency dominates.
THREADS = 32
#: Adjacent samples (an unshuffled run) are fetched together, up to this many bytes a request.
MAX_REQUEST = 4 << 20


class RangedReads:
    """Byte-range sample reads for the shards of ``streams`` (see the module doc)."""

    def __init__(self, streams: list[Stream], threads: int = THREADS) -> None:
        self._streams = streams
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._tables: dict[ShardRef, bytes] = {}
        self._lock = threading.Lock()

    def covers(self, ref: ShardRef, reader: ShardReader) -> bool:
        """Whether samples of this shard may be read by range."""
        stream = self._streams[ref.stream]
        if stream.remote_root is None or stream.validate_hash:
            return False
        if reader.offset_table_bytes is None or not reader.samples:
            return False
        raw, _ = reader.files["data"]
        return raw.bytes // reader.samples >= MIN_MEAN_SAMPLE

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def read(self, wanted: list[tuple[ShardRef, ShardReader, int]]) -> list[bytes]:
        """The stored bytes of each (shard, reader, sample index), in the order given; every
        request of the call runs concurrently."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="ranged-read")
        pool = self._pool
        readers = {ref: reader for ref, reader, _ in wanted}
        missing = [ref for ref in readers if ref not in self._tables]
        for ref, table in zip(missing, pool.map(lambda r: self._table(r, readers[r]), missing)):
            self._tables[ref] = table
        out: list[bytes] = [b""] * len(wanted)
        jobs: list[tuple[Any, list[tuple[int, int, int]]]] = []
        for ref, reader in readers.items():
            positions = [i for i, (r, _, _) in enumerate(wanted) if r == ref]
            indices = np.array([wanted[i][2] for i in positions], np.int64)
            spans = reader.sample_spans(self._tables[ref], indices, self._url(ref, reader))
            for start, stop, members in _coalesce(spans, positions):
                future = pool.submit(self._range, ref, reader, start, stop - start)
                jobs.append((future, [(pos, a - start, b - start) for pos, a, b in members]))
        for future, members in jobs:
            data = future.result()
            if len(members) == 1 and members[0][1] == 0 and members[0][2] == len(data):
                out[members[0][0]] = data
                continue
            view = memoryview(data)
            for pos, a, b in members:
                out[pos] = bytes(view[a:b])
        return out

    # ------------------------------------------------------------------ requests

    def _url(self, ref: ShardRef, reader: ShardReader) -> str:
        root = self._streams[ref.stream].remote_root
        assert root is not None
        return join_url(root, reader.files["data"][0].basename)

    def _table(self, ref: ShardRef, reader: ShardReader) -> bytes:
        length = reader.offset_table_bytes
        assert length is not None
        return self._range(ref, reader, 0, length)

    def _range(self, ref: ShardRef, reader: ShardReader, start: int, length: int) -> bytes:
        from streaming_lightning.storage.transfer import read_range

        stream = self._streams[ref.stream]
        return read_range(
            self._url(ref, reader),
            start,
            length,
            retry=int(stream.download_retry or 0),
            timeout=float(stream.download_timeout or 60),
        )


def _coalesce(
    spans: np.ndarray, positions: list[int]
) -> list[tuple[int, int, list[tuple[int, int, int]]]]:
    """Group [start, stop) spans that touch end to end (up to ``MAX_REQUEST`` bytes) into one
    request each: (request start, request stop, [(position, start, stop), ...])."""
    order = np.argsort(spans[:, 0], kind="stable")
    groups: list[tuple[int, int, list[tuple[int, int, int]]]] = []
    for i in order.tolist():
        start, stop = int(spans[i, 0]), int(spans[i, 1])
        if groups and groups[-1][1] == start and stop - groups[-1][0] <= MAX_REQUEST:
            first, _, members = groups[-1]
            members.append((positions[i], start, stop))
            groups[-1] = (first, stop, members)
        else:
            groups.append((start, stop, [(positions[i], start, stop)]))
    return groups
