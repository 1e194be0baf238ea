"""The node-local shard cache: fetch a shard once per node, decompress it once, read it through
a memory map, and (with ``cache_limit``) evict least-recently-used shards no process is using.

Coordination between ranks and workers of a node uses only the filesystem: a download lock per
file (storage layer), and a lease file per shard held with ``flock`` while a process reads the
shard. The kernel drops a dead process's locks, so a killed run leaves nothing held — no
shared-memory names, nothing to clean up by hand. What a kill can leave is the temp file of a
download or decompression it cut off (the target itself never appears partial); the next
process to open the cache removes those (:func:`discard_stale_temps`).
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from filelock import FileLock, Timeout

from streaming_lightning.dataset.stream import Stream
from streaming_lightning.errors import ConfigError, MissingFileError, StorageError
from streaming_lightning.format.index import INDEX_BASENAME
from streaming_lightning.format.reader import ShardReader
from streaming_lightning.fsutil import parse_temp_name
from streaming_lightning.storage.transfer import download_file, hash_verifier, lock_path_for
from streaming_lightning.storage.uploader import join_url

#: Memory maps a process keeps open at once; older ones are closed. Maps are file-backed, so
#: this bounds address-space entries, not RAM; it stays far below the kernel's map limit.
MAX_OPEN_SHARDS = 4096
#: How long a process waits for another one on the node to finish decompressing.
DECOMPRESS_DEADLINE_S = 600.0


@dataclass(frozen=True)
class ShardRef:
    stream: int
    shard: int


def largest_footprint(streams: list[Stream], remote_only: bool = False) -> int:
    """Bytes the largest shard occupies in a cache once ready (raw, plus zip if kept)."""
    largest = 0
    for stream in streams:
        if remote_only and stream.remote_root is None:
            continue
        footprint = stream.shard_table.footprint(
            bool(stream.keep_zip) or stream.remote_root is None
        )
        if len(footprint):
            largest = max(largest, int(footprint.max()))
    return largest


def check_cache_limit(streams: list[Stream], cache_limit: int) -> None:
    """Refuse a limit that cannot hold even the largest shard (it could never make progress)."""
    largest = largest_footprint(streams)
    if cache_limit < largest:
        raise ConfigError(
            f"cache_limit={cache_limit} bytes is smaller than the largest shard ({largest} bytes "
            "on disk); raise it to hold at least a few shards."
        )


def check_cache_fits(
    cache_limit: int, largest: int, readers_per_node: int, how: str, who: str
) -> None:
    """Fail at the start of an epoch, with the number to use, instead of stalling mid-epoch.

    Every reading process of a node holds at most one shard while it reads and needs room for
    the next one it fetches, so ``readers_per_node`` times the ``largest`` evictable shard is
    the smallest limit with which all of them can always make progress; below it, every process
    can end up waiting for a shard another one holds."""
    needed = readers_per_node * largest
    if cache_limit < needed:
        raise ConfigError(
            f"{who}: cache_limit={cache_limit} bytes is below the {needed} bytes this "
            f"configuration needs: {readers_per_node} processes on this node ({how}) may each "
            f"hold a shard of up to {largest} bytes while fetching another. "
            f"Raise cache_limit to at least {needed} (twice that leaves room to prefetch)."
        )


def _try_lock(path: str) -> FileLock | None:
    """The lock at ``path`` if it is free now (held on return), else None."""
    lock = FileLock(path)
    try:
        lock.acquire(blocking=False)
    except Timeout:
        return None
    return lock


def discard_stale_temps(stream: Stream) -> int:
    """Remove the temp files killed processes left beside the stream's cached files; returns
    how many. A temp file is removed only while the lock its writer held is free and held here
    (the file's download lock, or the stream's decompression lock), so no live writer loses
    the file it is about to rename. Without this, every kill during a download leaves a partial
    copy that nothing ever reads or deletes and that ``cache_limit`` does not count."""
    root = stream.local_root
    table = stream.shard_table
    stale = []  # (temp file, target, whether the target is downloaded)
    for folder in sorted({"", *table.directories}):  # "": index.json's folder, always
        directory = os.path.join(root, folder)
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            continue
        temps = [(name, parsed[0]) for name in names if (parsed := parse_temp_name(name))]
        if not temps:
            continue
        found = table.find_files([os.path.join(folder, target) for _, target in temps])
        for (name, target), position in zip(temps, found.tolist()):
            if position >= 0:
                downloaded = bool(table.file_downloaded[position])
            elif folder == "" and target == INDEX_BASENAME:
                downloaded = True
            else:
                continue
            stale.append(
                (os.path.join(directory, name), os.path.join(directory, target), downloaded)
            )
    if not stale:
        return 0
    try:
        decompressing = _try_lock(os.path.join(root, ".locks", "decompress.lock"))
    except OSError:  # a read-only dataset directory: nothing of ours to remove there
        return 0
    if decompressing is None:
        return 0  # a live process is decompressing; the next one to open the cache sweeps
    removed = 0
    try:
        for temp, target, downloaded in stale:
            lock = _try_lock(lock_path_for(target)) if downloaded else None
            if downloaded and lock is None:
                continue  # being downloaded right now
            try:
                os.unlink(temp)
                removed += 1
            except FileNotFoundError:
                pass
            finally:
                if lock is not None:
                    lock.release()
    finally:
        decompressing.release()
    return removed


class ShardCache:
    """Makes shards of a set of streams readable locally, honouring ``cache_limit`` (bytes)."""

    def __init__(self, streams: list[Stream], cache_limit: int | None, who: str = "") -> None:
        self.streams = streams
        self.cache_limit = cache_limit
        self.who = who
        self._open: OrderedDict[ShardRef, ShardReader] = OrderedDict()
        self._leases: dict[ShardRef, int] = {}
        self._lease_lock = threading.Lock()
        if cache_limit is not None:
            check_cache_limit(streams, cache_limit)
        for stream in streams:
            discard_stale_temps(stream)

    # ------------------------------------------------------------------ bookkeeping

    def reader(self, ref: ShardRef) -> ShardReader:
        """The shard's reader: the one open here if any, so its maps are reused."""
        reader = self._open.get(ref)
        return reader if reader is not None else self.streams[ref.stream].shards[ref.shard]

    def open_reader(self, ref: ShardRef) -> ShardReader | None:
        """The shard's reader if this process has it open, else None (no bookkeeping)."""
        return self._open.get(ref)

    def footprint(self, ref: ShardRef) -> int:
        """Bytes this shard occupies in the cache once ready (raw, plus zip if kept)."""
        stream = self.streams[ref.stream]
        table = stream.shard_table
        keep_zip = bool(stream.keep_zip) or stream.remote_root is None
        return int(table.raw_bytes[ref.shard] + (table.zip_bytes[ref.shard] if keep_zip else 0))

    def _name(self, ref: ShardRef) -> str:
        return f"{self.reader(ref).files['data'][0].basename} (stream {ref.stream})"

    def _lease_path(self, ref: ShardRef) -> str:
        reader = self.reader(ref)
        root = self.streams[ref.stream].local_root
        return os.path.join(
            root, ".locks", reader.files["data"][0].basename.replace("/", "__") + ".lease"
        )

    # ------------------------------------------------------------------ leases

    def acquire(self, ref: ShardRef) -> bool:
        """Mark the shard in use by this process (shared lock) so no one evicts it; returns
        whether this call took the lease (False: already held)."""
        with self._lease_lock:
            if ref in self._leases:
                return False
            path = self._lease_path(ref)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_SH)
            self._leases[ref] = fd
            return True

    def release(self, ref: ShardRef) -> None:
        with self._lease_lock:
            fd = self._leases.pop(ref, None)
        if fd is not None:
            os.close(fd)  # closing drops the flock

    def release_all(self) -> None:
        with self._lease_lock:
            held = list(self._leases)
        for ref in held:
            self.release(ref)

    # ------------------------------------------------------------------ fetching

    def ensure(self, ref: ShardRef) -> ShardReader:
        """Return an open reader for the shard, downloading and decompressing it if needed."""
        reader = self._open.get(ref)
        if reader is not None:
            # Without a cache limit nothing is ever evicted, so an open map stays valid. With
            # one, take the lease *before* checking the files: between a check and a lease
            # another process could evict the shard; once leased, nobody can.
            if self.cache_limit is not None:
                self.acquire(ref)
            if self.cache_limit is None or reader.is_ready():
                self._open.move_to_end(ref)
                return reader
            reader.close()  # evicted since we opened it (by another process, or this one's
            self._open.pop(ref, None)  # prefetch thread, which then dropped it already)
        if self.cache_limit is not None:
            self.acquire(ref)  # leases matter only when something may evict
        reader = self.reader(ref)
        if not reader.is_ready():
            self._fetch(ref)
        reader.open()
        self._open[ref] = reader
        while len(self._open) > MAX_OPEN_SHARDS:
            _, old = self._open.popitem(last=False)
            old.close()
        return reader

    def may_prefetch(self, ref: ShardRef, queued: int) -> bool:
        """Whether fetching ``ref`` ahead of use fits in half the cache limit (prefetching
        more than the cache holds would evict shards before they are read)."""
        if self.cache_limit is None:
            return True
        return (queued + 1) * self.footprint(ref) <= self.cache_limit // 2

    def fetch(self, ref: ShardRef) -> None:
        """Download and decompress ``ref`` if it is not ready (prefetch threads). The shard is
        leased while it is being fetched, so no process evicts it half-way."""
        if self.reader(ref).is_ready():
            return
        took = self.cache_limit is not None and self.acquire(ref)
        try:
            if not self.reader(ref).is_ready():
                self._fetch(ref)
        finally:
            if took:
                self.release(ref)

    def _fetch(self, ref: ShardRef) -> None:
        stream, reader = self.streams[ref.stream], self.reader(ref)
        if self.cache_limit is not None:
            self._make_room(self.footprint(ref), keep=ref)
        for raw, zipped in reader.file_pairs():
            raw_path = reader.path_of(raw.basename)
            if os.path.exists(raw_path):
                continue
            stored = zipped or raw
            stored_path = reader.path_of(stored.basename)
            if not os.path.exists(stored_path):
                if stream.remote_root is None:
                    raise MissingFileError(
                        f"{self.who}: shard file {stored_path} is missing and stream "
                        f"{stream.describe()} has no remote to download it from."
                    )
                url = join_url(stream.remote_root, stored.basename)
                verify = None
                if stream.validate_hash:
                    verify = hash_verifier(
                        stored.hashes.get(stream.validate_hash), stream.validate_hash, url
                    )
                try:
                    download_file(
                        url,
                        stored_path,
                        retry=int(stream.download_retry or 0),
                        timeout=float(stream.download_timeout or 60),
                        expected_bytes=stored.bytes,
                        verify=verify,
                    )
                except StorageError as error:
                    # Same class (callers tell not-found from transient), plus who and which shard.
                    raise type(error)(
                        f"{self.who}: fetching shard {self._name(ref)}: {error}"
                    ) from error
        lock = os.path.join(stream.local_root, ".locks", "decompress.lock")
        try:
            with FileLock(lock, timeout=DECOMPRESS_DEADLINE_S):
                # Never delete the compressed originals when they are the only copy (no remote).
                reader.prepare(
                    validate_hash=None,
                    keep_zip=bool(stream.keep_zip) or stream.remote_root is None,
                )
        except Timeout:
            raise StorageError(
                f"{self.who}: waited {DECOMPRESS_DEADLINE_S:.0f} s for another process on this "
                f"node to finish decompressing (lock {lock}) before preparing shard "
                f"{self._name(ref)}; that process is stuck or too slow."
            ) from None

    # ------------------------------------------------------------------ eviction

    def _present(self) -> list[tuple[float, ShardRef, int]]:
        """(last use, shard, bytes) for every evictable shard with files in the cache: the
        cache directories are listed and the names looked up in the shard tables (one
        vectorised search), instead of probing every shard of the index (100,000 stats per
        fetch at 100,000 shards)."""
        usage: dict[ShardRef, tuple[int, float]] = {}
        for s, stream in enumerate(self.streams):
            if stream.remote_root is None:
                continue  # a local-only stream is the dataset itself, never a cache
            table = stream.shard_table
            for folder in table.directories:
                try:
                    with os.scandir(os.path.join(stream.local_root, folder)) as listing:
                        entries = list(listing)
                except FileNotFoundError:
                    continue
                found = table.find_files([os.path.join(folder, entry.name) for entry in entries])
                for entry, position in zip(entries, found.tolist()):
                    if position < 0:
                        continue
                    try:
                        st = entry.stat()
                    except FileNotFoundError:
                        continue  # evicted while we listed
                    ref = ShardRef(s, int(table.file_shards[position]))
                    size, last = usage.get(ref, (0, 0.0))
                    usage[ref] = (size + st.st_size, max(last, st.st_atime, st.st_mtime))
        return [(last, ref, size) for ref, (size, last) in usage.items() if size]

    def _make_room(self, needed: int, keep: ShardRef, deadline_s: float = 120.0) -> None:
        assert self.cache_limit is not None
        root = self.streams[keep.stream].local_root
        deadline = time.monotonic() + deadline_s
        lock = os.path.join(root, ".locks", "evict.lock")
        evict_lock = FileLock(lock)
        while True:
            try:
                evict_lock.acquire(timeout=max(0.0, deadline - time.monotonic()))
            except Timeout:
                raise StorageError(
                    f"{self.who}: waited {deadline_s:.0f} s for the eviction lock {lock} to make "
                    f"room for shard {self._name(keep)}; another process on this node holds it."
                ) from None
            try:
                present = self._present()
                used = sum(size for _, _, size in present)
                if used + needed <= self.cache_limit:
                    return
                with self._lease_lock:
                    mine = set(self._leases)
                for _, ref, size in sorted(present, key=lambda item: item[0]):
                    if ref == keep or ref in mine:
                        continue
                    if self._try_evict(ref):
                        used -= size
                        if used + needed <= self.cache_limit:
                            return
            finally:
                evict_lock.release()
            if time.monotonic() > deadline or all(
                ref in mine or ref == keep for _, ref, _ in present
            ):
                # Nobody else holds a lease we could wait for, or we waited long enough.
                raise StorageError(
                    f"{self.who}: cache_limit={self.cache_limit} bytes cannot hold shard "
                    f"{self.reader(keep).files['data'][0].basename} ({needed} bytes): every cached "
                    "shard is in use by a rank or worker on this node. Raise cache_limit."
                )
            time.sleep(0.05)

    def _try_evict(self, ref: ShardRef) -> bool:
        if self.streams[ref.stream].remote_root is None:
            return False  # never delete the only copy of a shard
        path = self._lease_path(ref)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                if err.errno in (errno.EAGAIN, errno.EACCES):
                    return False  # someone is reading it
                raise
            reader = self.reader(ref)
            stale = self._open.pop(ref, None)
            if stale is not None:
                stale.close()
            for raw, zipped in reader.file_pairs():
                for info in (raw, zipped):
                    if info is not None:
                        try:
                            os.unlink(reader.path_of(info.basename))
                        except FileNotFoundError:
                            pass
            return True
        finally:
            os.close(fd)

    def close(self) -> None:
        self.release_all()
        for reader in self._open.values():
            reader.close()
        self._open.clear()
