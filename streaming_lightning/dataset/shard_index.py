"""Each stream's index parsed once per node and shared, and its shard readers made on demand.

The first process of a node to open a dataset (any rank or worker) validates ``index.json`` and
writes its :class:`~streaming_lightning.format.shard_table.ShardTable` under a lock; every
other process waits for that lock (with a deadline), then memory-maps the same file. The table
is named after a digest of the index's bytes, so a changed index gets a new table and an old
table can never describe a new index. A process's own memory then holds no per-shard Python
objects: readers exist only for the shards it is reading (:class:`ShardList`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import overload

from filelock import FileLock, Timeout

from streaming_lightning.errors import CorruptDataError, StorageError
from streaming_lightning.format.index import parse_index
from streaming_lightning.format.reader import ShardReader
from streaming_lightning.format.readers import reader_from_json
from streaming_lightning.format.shard_table import ShardTable, index_digest
from streaming_lightning.fsutil import atomic_file, parse_temp_name

logger = logging.getLogger(__name__)

#: How long a process waits for another process of the node to build a table.
BUILD_DEADLINE_S = 600.0
#: Tables in a directory shared by several datasets are removed after this long unused.
SHARED_TABLE_TTL_S = 14 * 24 * 3600.0
_SUFFIX = ".table"


def _build(index_path: str) -> ShardTable:
    with open(index_path, "rb") as file:
        data = file.read()
    return ShardTable.build(parse_index(data, source=index_path), source=index_path)


def _try_load(path: str, digest: str) -> ShardTable | None:
    try:
        table = ShardTable.load(path, index_digest=digest)
    except (FileNotFoundError, CorruptDataError):
        return None  # absent, or damaged: the builder (under the lock) replaces it
    with contextlib.suppress(OSError):
        os.utime(path)  # marks it in use, for the expiry of shared table directories
    return table


def load_shared_table(
    index_path: str, table_dir: str | None, *, exclusive: bool, who: str = ""
) -> ShardTable:
    """The table of the index at ``index_path``: mapped from ``table_dir`` if a process of this
    node built it already, else built (once, under a lock) and written there.

    ``exclusive``: ``table_dir`` serves this dataset only, so tables of its older indexes are
    removed; otherwise (a per-user directory several datasets share) tables unused for
    :data:`SHARED_TABLE_TTL_S` are. With no usable ``table_dir`` the table is built in memory
    (correct, but parsed by every process)."""
    if table_dir is None:
        return _build(index_path)
    digest = index_digest(index_path)
    path = os.path.join(table_dir, digest + _SUFFIX)
    table = _try_load(path, digest)
    if table is not None:
        return table
    try:
        os.makedirs(table_dir, exist_ok=True)
        lock = FileLock(os.path.join(table_dir, ".build.lock"))
        lock.acquire(timeout=BUILD_DEADLINE_S)
    except Timeout:
        raise StorageError(
            f"{who or f'process {os.getpid()}'}: waited {BUILD_DEADLINE_S:.0f} s for another "
            f"process on this node to build the shard table of {index_path} (lock "
            f"{table_dir}/.build.lock); that process is stuck or too slow."
        ) from None
    except OSError:  # not writable after all: correct without sharing
        return _build(index_path)
    try:
        table = _try_load(path, digest)
        if table is not None:
            return table
        began = time.monotonic()
        built = _build(index_path)
        with atomic_file(path) as file:
            built.write(file, index_digest=digest, index_path=os.path.abspath(index_path))
        logger.info(
            "process %d built the shard table of %s (%d shards) in %.2f s: %s",
            os.getpid(),
            index_path,
            len(built),
            time.monotonic() - began,
            path,
        )
        del built
        _sweep(table_dir, keep=path, exclusive=exclusive)
        return ShardTable.load(path, index_digest=digest)  # mapped: pages shared node-wide
    finally:
        lock.release()


def _sweep(table_dir: str, keep: str, exclusive: bool) -> None:
    """Remove what no one will read again (the caller holds the build lock, so no live writer
    owns a temp file here): killed builders' temp files, and superseded or expired tables.
    A process still mapping a removed table keeps reading it (POSIX unlink semantics)."""
    now = time.time()
    for entry in os.scandir(table_dir):
        if entry.path == keep:
            continue
        stale = parse_temp_name(entry.name) is not None
        if not stale and entry.name.endswith(_SUFFIX):
            with contextlib.suppress(OSError):
                stale = exclusive or now - entry.stat().st_mtime > SHARED_TABLE_TTL_S
        if stale:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


class ShardList(Sequence[ShardReader]):
    """The readers of a table's shards, made when first asked for and kept for the
    :data:`KEEP` most recently used: a process holds objects only for the shards it reads.

    A reader dropped from the list and asked for again is a new object; nothing relies on a
    reader's identity (the shard cache keeps the readers it has open itself)."""

    KEEP = 1024

    def __init__(
        self, table: ShardTable, dirname: str, split: str | None, *, allow_unsafe_types: bool
    ) -> None:
        self.table = table
        self.dirname = dirname
        self.split = split
        self.allow_unsafe_types = allow_unsafe_types
        self._made: OrderedDict[int, ShardReader] = OrderedDict()

    def __len__(self) -> int:
        return len(self.table)

    @overload
    def __getitem__(self, index: int) -> ShardReader: ...

    @overload
    def __getitem__(self, index: slice) -> list[ShardReader]: ...

    def __getitem__(self, index: int | slice) -> ShardReader | list[ShardReader]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"shard {index} out of range for {n} shards")
        index %= n
        reader = self._made.get(index)
        if reader is None:
            reader = reader_from_json(
                self.dirname,
                self.split,
                self.table.spec(index),
                allow_unsafe_types=self.allow_unsafe_types,
            )
            self._made[index] = reader
            if len(self._made) > self.KEEP:
                self._made.popitem(last=False)
        else:
            self._made.move_to_end(index)
        return reader

    def __iter__(self) -> Iterator[ShardReader]:
        for i in range(len(self)):
            yield self[i]

    def __getstate__(self) -> dict[str, object]:
        """Pickled into spawned workers without the readers (they are made again there)."""
        state = self.__dict__.copy()
        state["_made"] = OrderedDict()
        return state
