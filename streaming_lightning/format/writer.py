"""What every shard writer shares: shard rollover at ``size_limit``, compression, hashing,
atomic file writes, the index written last, and cleanup when writing fails.

Finished shards are compressed, hashed and written on a thread pool (zstd, hashlib and file
writes release the GIL), so encoding the next shard's samples overlaps with the I/O of the last.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from abc import ABC, abstractmethod
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, ClassVar

from streaming_lightning.errors import ConfigError, StreamingError
from streaming_lightning.format.compression import (
    compress,
    compression_extension,
    validate_compression,
)
from streaming_lightning.format.hashing import hash_bytes, validate_hashes
from streaming_lightning.format.index import INDEX_BASENAME, INDEX_VERSION, write_index
from streaming_lightning.format.sink import RemoteSink, open_sink
from streaming_lightning.fsutil import atomic_write
from streaming_lightning.units import parse_bytes


class OutputExistsError(StreamingError, FileExistsError):
    """The writer's output directory already holds files and ``exist_ok`` is False."""


def _resolve_out(out: str | tuple[str, str]) -> tuple[str | None, str | None]:
    """Split ``out`` into (local directory or None, remote URL or None)."""
    if isinstance(out, (tuple, list)):
        if len(out) != 2:
            raise ConfigError(f"out must be a path, a URL, or a (local, remote) pair; got {out!r}.")
        local, remote = out
    elif "://" in str(out) and not str(out).startswith("file://"):
        local, remote = None, str(out)
    else:
        local, remote = out, None
    if isinstance(local, str) and local.startswith("file://"):
        local = local[len("file://") :]
    if not local and not remote:
        raise ConfigError("out must name a directory or a remote URL.")
    return (os.path.abspath(os.path.expanduser(local)) if local else None), remote


class ShardWriter(ABC):
    """Base class of MDSWriter, XSVWriter and JSONWriter.

    Use as a context manager; ``finish()`` runs on a clean exit. If the block raises, nothing
    this writer wrote is left behind: no index.json, no shard files.
    """

    format: ClassVar[str] = ""
    #: Bytes each sample / each shard adds beyond the samples' own bytes (counts toward size_limit).
    extra_bytes_per_sample: ClassVar[int] = 0

    def __init__(
        self,
        *,
        out: str | tuple[str, str],
        keep_local: bool = False,
        compression: str | None = None,
        hashes: list[str] | None = None,
        size_limit: int | str | None = 1 << 26,
        progress_bar: bool = False,
        max_workers: int | None = None,
        exist_ok: bool = False,
        retry: int = 2,
    ) -> None:
        self.compression = validate_compression(compression)
        self.hashes = validate_hashes(hashes)
        limit = parse_bytes(size_limit) if size_limit else None
        if limit is not None and limit <= 0:
            raise ConfigError(f"size_limit must be positive, got {size_limit!r}.")
        if limit is not None and limit >= 1 << 32:
            raise ConfigError(
                f"size_limit must be below 2**32 bytes (got {limit}): sample offsets in a shard "
                "are stored as uint32."
            )
        self.size_limit = limit
        self.keep_local = keep_local
        self.retry = retry
        local, self.remote = _resolve_out(out)
        self._sink: RemoteSink | None = None
        if self.remote is not None:
            self._sink = open_sink(self.remote, retry)
            self._sink.check_output(exist_ok)
        # Remote only: stage shards in a private temp dir, removed when the writer is done.
        self._owns_local = local is None
        self.local = local or tempfile.mkdtemp(prefix="streaming-lightning-write-")
        if not self._owns_local:
            self._prepare_directory(exist_ok)

        self.shards: list[dict[str, Any]] = []
        self._samples: list[bytes] = []
        self._shard_bytes = self.extra_bytes_per_shard
        self._num_shards = 0
        self._pending: deque[Future[dict[str, Any]]] = deque()
        self._written: list[str] = []
        self._written_lock = threading.Lock()
        self._max_workers = max(1, max_workers or min(4, os.cpu_count() or 1))
        self._executor = ThreadPoolExecutor(self._max_workers, thread_name_prefix="shard-writer")
        self._finished = False
        self._progress = None
        if progress_bar:
            from tqdm import tqdm

            self._progress = tqdm(desc=f"Writing {self.format} shards", unit=" samples")

    # ----------------------------------------------------------------------------- setup

    def _prepare_directory(self, exist_ok: bool) -> None:
        if os.path.isdir(self.local) and os.listdir(self.local):
            if not exist_ok:
                raise OutputExistsError(
                    f"Output directory {self.local} is not empty. Pass exist_ok=True to replace "
                    "its contents, or choose another directory."
                )
            shutil.rmtree(self.local)
        os.makedirs(self.local, exist_ok=True)

    def get_config(self) -> dict[str, Any]:
        """Shard fields shared by every shard of this writer (also embedded in MDS shards)."""
        return {
            "version": INDEX_VERSION,
            "format": self.format,
            "compression": self.compression,
            "hashes": self.hashes,
            "size_limit": self.size_limit,
        }

    @property
    def extra_bytes_per_shard(self) -> int:
        return 0

    # ----------------------------------------------------------------------------- writing

    @abstractmethod
    def encode_sample(self, sample: dict[str, Any]) -> bytes:
        """Encode one sample to the bytes stored for it in the shard."""

    @abstractmethod
    def encode_shard(self, samples: list[bytes]) -> list[tuple[str, bytes]]:
        """Build the shard's files as (role, raw bytes), role being 'data' or 'meta'."""

    def write(self, sample: dict[str, Any]) -> None:
        """Encode and buffer one sample, starting a new shard when ``size_limit`` is reached."""
        if self._finished:
            raise StreamingError(f"This writer for {self.local} is finished; create a new one.")
        data = self.encode_sample(sample)
        size = len(data) + self.extra_bytes_per_sample
        # Same rollover rule as mosaicml-streaming, so both produce identical shard boundaries;
        # unlike it, a sample larger than size_limit gets a shard of its own, never an empty one.
        limit = self.size_limit
        if limit and self._samples and self._shard_bytes + size > limit:
            self._flush()
        self._samples.append(data)
        self._shard_bytes += size

    def _flush(self) -> None:
        samples, self._samples = self._samples, []
        self._shard_bytes = self.extra_bytes_per_shard
        shard_id = self._num_shards
        self._num_shards += 1
        self._pending.append(self._executor.submit(self._build_shard, shard_id, samples))
        if self._progress is not None:
            self._progress.update(len(samples))
        # Bound buffered memory: never more than a few finished shards waiting on I/O.
        while len(self._pending) > 2 * self._max_workers:
            self._collect(self._pending.popleft())

    def _collect(self, future: Future[dict[str, Any]]) -> None:
        self.shards.append(future.result())

    def _basename(self, shard_id: int, role: str) -> str:
        parts = ["shard", f"{shard_id:05}", self.format] + (["meta"] if role == "meta" else [])
        return ".".join(parts)

    def _build_shard(self, shard_id: int, samples: list[bytes]) -> dict[str, Any]:
        entry: dict[str, Any] = {"samples": len(samples)}
        for role, raw in self.encode_shard(samples):
            raw_name = self._basename(shard_id, role)
            raw_info = self._file_info(raw_name, raw)
            zip_info = None
            data, name = raw, raw_name
            if self.compression:
                name = f"{raw_name}.{compression_extension(self.compression)}"
                data = compress(self.compression, raw)
                zip_info = self._file_info(name, data)
            path = os.path.join(self.local, name)
            with self._written_lock:
                self._written.append(path)
            atomic_write(path, data)
            if self._sink is not None:
                self._sink.upload(path, name)
                if not self.keep_local:
                    os.unlink(path)
            prefix = "data" if role == "data" else "meta"
            entry[f"raw_{prefix}"] = raw_info
            entry[f"zip_{prefix}"] = zip_info
        entry.update(self.get_config())
        return entry

    def _file_info(self, basename: str, data: bytes) -> dict[str, Any]:
        return {
            "basename": basename,
            "bytes": len(data),
            "hashes": {algo: hash_bytes(algo, data) for algo in self.hashes},
        }

    # ----------------------------------------------------------------------------- ending

    def finish(self) -> None:
        """Write the last shard, wait for all shard files, then write index.json (last)."""
        if self._finished:
            return
        try:
            if self._samples:
                self._flush()
            while self._pending:
                self._collect(self._pending.popleft())
            index_path = write_index(self.local, self.shards)
            if self._sink is not None:
                # Last, so a reader of the remote never sees an index naming missing shards.
                self._sink.upload(index_path, INDEX_BASENAME)
                if not self.keep_local:
                    shutil.rmtree(self.local, ignore_errors=True)
        except BaseException:
            self._abort()
            raise
        finally:
            self._finished = True
            self._executor.shutdown(wait=True)
            if self._progress is not None:
                self._progress.close()

    def _abort(self) -> None:
        """Remove every file this writer created, so no half-written dataset remains."""
        self._finished = True
        for future in self._pending:
            future.cancel()
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._pending.clear()
        with self._written_lock:
            written = list(self._written)
        for path in [*written, os.path.join(self.local, INDEX_BASENAME)]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        if self._progress is not None:
            self._progress.close()

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.finish()
        elif not self._finished:
            self._abort()
