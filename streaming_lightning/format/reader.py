"""What every shard reader shares: locating a shard's files safely, decompressing and
hash-checking them, memory-mapping the raw bytes, and validating offset tables.

A reader trusts nothing it reads: the index entry was validated by :mod:`.index`, and the
shard's own header is checked against it (sample count, file size, monotonic offsets) before
any sample is served. Every error names the file.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np

from streaming_lightning.errors import (
    CorruptDataError,
    EncodingError,
    HashError,
    HashMismatchError,
    IndexFormatError,
    MissingFileError,
)
from streaming_lightning.format.compression import decompress
from streaming_lightning.format.hashing import hash_bytes
from streaming_lightning.format.index import FileInfo
from streaming_lightning.fsutil import atomic_write, safe_join


def _fd_budget() -> int:
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return 0
    return max(0, min(1024, soft // 4))


_FD_BUDGET = _fd_budget()
_fds_lock = threading.Lock()
_fds_open = 0


class _MappedFile:
    """A read-only memory map of one file (empty files are represented by ``b''``), plus,
    while the process has descriptors to spare, the file kept open for ``pread``: copying a
    large value out of a map costs a page fault per few pages touched, which makes shuffled
    reads of 100 KB samples ~3x slower than one ``pread`` (a copy straight from the page
    cache). At most a quarter of RLIMIT_NOFILE (and 1024) descriptors are kept this way."""

    def __init__(self, path: str) -> None:
        global _fds_open
        self.path = path
        self.fd: int | None = None
        with open(path, "rb") as file:
            self.size = os.fstat(file.fileno()).st_size
            self.buffer: mmap.mmap | bytes = (
                mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) if self.size else b""
            )
            if isinstance(self.buffer, mmap.mmap) and hasattr(mmap, "MADV_WILLNEED"):
                # Shards are read whole and soon: have the kernel read ahead now.
                self.buffer.madvise(mmap.MADV_WILLNEED)
            with _fds_lock:
                if self.size and _fds_open < _FD_BUDGET:
                    self.fd = os.dup(file.fileno())
                    _fds_open += 1

    def close(self) -> None:
        global _fds_open
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
            with _fds_lock:
                _fds_open -= 1
        if isinstance(self.buffer, mmap.mmap):
            try:
                self.buffer.close()
            except BufferError:
                pass  # a view is still alive (e.g. in a traceback); the map closes when it dies
        self.buffer = b""


def _read_file(path: str) -> bytes:
    """The whole file at ``path`` (a directory there is corrupt data, named as such)."""
    try:
        with open(path, "rb") as file:
            return file.read()
    except IsADirectoryError:
        raise CorruptDataError(
            f"{path}: is a directory, but index.json names it as a shard file."
        ) from None


def column_error(err: EncodingError, where: str, column: str) -> EncodingError:
    """A coder's error (which knows only the encoding) with the file, sample and column."""
    return EncodingError(f"{where}: column {column!r}: {err}")


#: Values at least this large are read with pread rather than copied out of the map.
LARGE_READ = 16 << 10


def read_offset_table(
    buffer: Any, size: int, path: str, expected_samples: int, base: int
) -> np.ndarray:
    """Parse ``uint32 n | uint32 offsets[n+1]`` at the start of ``buffer`` and validate it.

    ``base`` is the smallest legal first offset (end of the header for MDS, 0 for meta files).
    Returns a uint32 view into ``buffer``; drop it before closing the map.
    """
    if size < 4:
        raise CorruptDataError(f"{path}: {size} bytes is too short to be a shard (truncated?).")
    num_samples = int(np.frombuffer(buffer, "<u4", 1, 0)[0])
    if num_samples != expected_samples:
        raise CorruptDataError(
            f"{path}: holds {num_samples} samples but index.json says {expected_samples}; the "
            "file or the index is corrupt."
        )
    table_end = 4 + 4 * (num_samples + 1)
    if size < table_end:
        raise CorruptDataError(f"{path}: truncated inside its offset table ({size} bytes).")
    # A zero-copy view into the map: per-shard memory stays file-backed, however many samples.
    offsets = np.frombuffer(buffer, "<u4", num_samples + 1, 4)
    if offsets[0] < max(base, 0) or np.any(offsets[1:] < offsets[:-1]):
        raise CorruptDataError(f"{path}: sample offsets are not increasing; the file is corrupt.")
    return offsets


class ShardReader(ABC):
    """Read one shard. Subclasses define the file layout and how a sample's bytes decode."""

    format: ClassVar[str] = ""
    #: Roles of the files that make up a shard, e.g. ("data",) or ("data", "meta").
    roles: ClassVar[tuple[str, ...]] = ("data",)
    #: The role of the file that starts with the offset table.
    table_role: ClassVar[str] = "data"

    def __init__(
        self,
        dirname: str,
        split: str | None,
        spec: dict[str, Any],
        *,
        allow_unsafe_types: bool = False,
    ) -> None:
        self.dirname = dirname
        self.split = split or ""
        self.spec = spec
        self.samples: int = spec["samples"]
        self.compression: str | None = spec.get("compression")
        self.hashes: list[str] = list(spec.get("hashes", []))
        self.size_limit: int | None = spec.get("size_limit")
        self.allow_unsafe_types = allow_unsafe_types
        self.files: dict[str, tuple[FileInfo, FileInfo | None]] = {}
        for role in self.roles:
            raw = FileInfo.from_json(spec[f"raw_{role}"], where=f"shard raw_{role}")
            zipped = spec.get(f"zip_{role}")
            self.files[role] = (
                raw,
                FileInfo.from_json(zipped, where=f"shard zip_{role}") if zipped else None,
            )
        self._maps: dict[str, _MappedFile] = {}
        self.check_safe()

    def __getstate__(self) -> dict[str, Any]:
        """Pickled into spawned DataLoader workers (and ``ddp_spawn`` ranks): maps and views
        of them stay behind and are reopened on first use there."""
        state = self.__dict__.copy()
        state["_maps"] = {}
        return state

    # ----------------------------------------------------------------------------- spec

    @classmethod
    @abstractmethod
    def validate_spec(cls, spec: dict[str, Any], where: str) -> None:
        """Check the format-specific fields of an index entry; raise IndexFormatError."""

    def check_safe(self) -> None:
        """Refuse unsafe encodings unless allowed (overridden by formats that have them)."""
        return

    @classmethod
    def _require_list(cls, spec: dict[str, Any], key: str, where: str) -> list[Any]:
        value = spec.get(key)
        if not isinstance(value, list):
            raise IndexFormatError(f"{where}: {cls.format} shard needs a {key!r} list.")
        return value

    # ----------------------------------------------------------------------------- files

    @property
    def root(self) -> str:
        return os.path.join(self.dirname, self.split) if self.split else self.dirname

    def path_of(self, basename: str) -> str:
        """Absolute path of a shard file, refusing names that escape the dataset directory."""
        return safe_join(self.root, basename, source=os.path.join(self.root, "index.json"))

    def file_pairs(self) -> list[tuple[FileInfo, FileInfo | None]]:
        """(raw, zip) info for each file of this shard — what a downloader must fetch."""
        return [self.files[role] for role in self.roles]

    def is_ready(self) -> bool:
        """Whether every raw file is present locally (decompressed and ready to map)."""
        return all(os.path.exists(self.path_of(raw.basename)) for raw, _ in self.file_pairs())

    def prepare(self, *, validate_hash: str | None = None, keep_zip: bool = True) -> None:
        """Make the raw files available locally: verify, then decompress zipped ones.

        Compressed files are verified before decompression (the hash covers the file as
        stored); uncompressed ones are verified as they are.
        """
        for raw, zipped in self.file_pairs():
            raw_path = self.path_of(raw.basename)
            if os.path.exists(raw_path):
                if validate_hash and zipped is None:
                    self._verify(raw, raw_path, validate_hash)
                continue
            if zipped is None:
                raise MissingFileError(f"Shard file {raw_path} does not exist.")
            zip_path = self.path_of(zipped.basename)
            if not os.path.exists(zip_path):
                raise MissingFileError(f"Neither {raw_path} nor {zip_path} exists.")
            data = _read_file(zip_path)
            if validate_hash:
                self._check_digest(zipped, zip_path, data, validate_hash)
            # Bounded by the recorded size: a forged frame header cannot make us allocate more.
            raw_bytes = decompress(self.compression, data, source=zip_path, max_size=raw.bytes)
            if len(raw_bytes) != raw.bytes:
                raise CorruptDataError(
                    f"{zip_path}: decompresses to {len(raw_bytes)} bytes, index.json says {raw.bytes}."
                )
            atomic_write(raw_path, raw_bytes)
            if not keep_zip:
                os.unlink(zip_path)

    def _verify(self, info: FileInfo, path: str, algo: str) -> None:
        self._check_digest(info, path, _read_file(path), algo)

    @staticmethod
    def _check_digest(info: FileInfo, path: str, data: bytes, algo: str) -> None:
        expected = info.hashes.get(algo)
        if expected is None:
            raise HashError(
                f"{path}: validate_hash={algo!r} but index.json records only "
                f"{sorted(info.hashes) or 'no hashes'} for it."
            )
        actual = hash_bytes(algo, data)
        if actual != expected:
            raise HashMismatchError(
                f"{path}: {algo} is {actual}, index.json says {expected}. The file is corrupt; "
                "delete it so it is fetched again."
            )

    def _map(self, role: str) -> _MappedFile:
        mapped = self._maps.get(role)
        if mapped is None:
            raw, _ = self.files[role]
            path = self.path_of(raw.basename)
            try:
                mapped = _MappedFile(path)
            except (FileNotFoundError, NotADirectoryError):
                raise MissingFileError(
                    f"Shard file {path} is not present; call prepare() (or let the dataset "
                    "download it) first."
                ) from None
            except IsADirectoryError:
                raise CorruptDataError(
                    f"{path}: is a directory, but index.json names it as a shard file."
                ) from None
            if mapped.size != raw.bytes:
                mapped.close()
                raise CorruptDataError(
                    f"{path}: is {mapped.size} bytes but index.json says {raw.bytes} "
                    "(truncated or replaced file)."
                )
            try:
                self._on_open(role, mapped)
            except BaseException:
                self._drop_views()
                mapped.close()
                raise
            self._maps[role] = mapped
        return mapped

    def _on_open(self, role: str, mapped: _MappedFile) -> None:
        """Parse and validate a freshly mapped file's header (per format)."""
        return

    def open(self) -> ShardReader:
        """Map the shard's files and validate their headers (idempotent)."""
        for role in self.roles:
            self._map(role)
        return self

    def _drop_views(self) -> None:
        """Forget numpy views into the maps (a map with live views cannot be closed)."""
        return

    def close(self) -> None:
        """Release the memory maps (e.g. before the cache evicts this shard)."""
        self._drop_views()
        for mapped in self._maps.values():
            mapped.close()
        self._maps.clear()

    # ----------------------------------------------------------------------------- samples

    def __len__(self) -> int:
        return self.samples

    def _check_index(self, idx: int) -> int:
        if not -self.samples <= idx < self.samples:
            raise IndexError(f"Sample {idx} out of range for a shard of {self.samples} samples.")
        return idx % self.samples if self.samples else idx

    @abstractmethod
    def get_sample_data(self, idx: int) -> bytes:
        """The stored bytes of sample ``idx`` of this shard."""

    @abstractmethod
    def decode_sample(self, data: bytes, idx: int | None = None) -> dict[str, Any]:
        """Decode one sample's stored bytes into a dict of column values; ``idx`` (the
        sample's index in the shard, when known) is named in errors."""

    def __getitem__(self, idx: int) -> dict[str, Any]:
        idx = self._check_index(idx)
        return self.decode_sample(self.get_sample_data(idx), idx)

    @property
    def fixed_size_samples(self) -> bool:
        """Whether every sample has the same byte size (then ``get_samples`` decodes many
        samples with a few numpy operations, and batching them pays off)."""
        return False

    @property
    def batchable(self) -> bool:
        """Whether ``get_rows``/``decode_batch`` can build whole batches (MDS, fixed-size)."""
        return False

    def will_need(self, indices: np.ndarray) -> None:
        """Hint that these samples are read soon (a cold page cache then reads them in
        parallel); formats that cannot locate samples cheaply ignore it."""
        return None

    @property
    def offset_table_bytes(self) -> int | None:
        """Length of the offset table at the start of the stored data file when single
        samples can be read out of the remote file by byte range (uncompressed formats with
        one), else None; see :meth:`sample_spans`."""
        return None

    def sample_spans(self, table: bytes, indices: np.ndarray, where: str) -> np.ndarray:
        """(k, 2) [start, stop) byte ranges of samples ``indices`` in the stored data file,
        from its offset table ``table`` (read remotely: validated like a local one)."""
        raise NotImplementedError(f"{type(self).__name__} has no byte-range sample reads")

    @property
    def decoding_is_copy(self) -> bool:
        """Whether a sample's values are its stored bytes as they are (raw ``bytes`` and
        fixed-size numbers): reading a sample is then a copy, with no decoding work."""
        return False

    def get_samples(self, indices: Sequence[int] | np.ndarray) -> list[dict[str, Any]]:
        """Decode several samples of this shard."""
        return [self[int(i)] for i in indices]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for idx in range(self.samples):
            yield self[idx]

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()
