"""Stream: one dataset directory (local, or remote + local cache) and how much of it an epoch
draws. A StreamingDataset mixes one or more streams."""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from streaming_lightning.dataset.shard_index import ShardList, load_shared_table
from streaming_lightning.errors import ConfigError, MissingFileError
from streaming_lightning.format.index import INDEX_BASENAME
from streaming_lightning.format.reader import ShardReader
from streaming_lightning.format.shard_table import ShardTable
from streaming_lightning.fsutil import atomic_write
from streaming_lightning.storage.registry import is_remote
from streaming_lightning.storage.transfer import download_file
from streaming_lightning.storage.uploader import join_url

SOURCE_MARKER = ".streaming-lightning-source.json"
#: Subdirectory of a remote stream's cache holding its shard table (see shard_index).
SHARD_TABLE_DIR = ".shard-table"


def _current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return str(os.getuid())


def _owner(path: str) -> str:
    uid = os.stat(path).st_uid
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return f"uid {uid}"


def default_cache_root() -> str:
    """Per-user cache root: ``$STREAMING_LIGHTNING_CACHE``, else ~/.cache/streaming-lightning,
    else a per-user folder in the temp dir (never one shared by all users)."""
    explicit = os.environ.get("STREAMING_LIGHTNING_CACHE")
    if explicit:
        return explicit
    home = os.path.expanduser("~")
    if home and home != "~" and os.access(home, os.W_OK):
        return os.path.join(home, ".cache", "streaming-lightning")
    return os.path.join(tempfile.gettempdir(), f"streaming-lightning-{_current_user()}")


def default_local_for(remote: str) -> str:
    """A cache directory unique to ``remote``: readable name plus a hash of the full URL."""
    digest = hashlib.sha256(remote.rstrip("/").encode()).hexdigest()[:16]
    tail = "".join(
        c if c.isalnum() or c in "-_." else "_" for c in remote.rstrip("/").split("/")[-1]
    )[:40]
    return os.path.join(default_cache_root(), f"{tail or 'dataset'}-{digest}")


class Stream:
    """One dataset directory and its epoch draw.

    ``proportion`` (share of the epoch), ``repeat`` (multiple of the stream's size) and
    ``choose`` (absolute samples per epoch) are mutually exclusive; with none, an epoch holds
    the stream once. The per-stream download settings default to the dataset's.
    """

    def __init__(
        self,
        *,
        remote: str | None = None,
        local: str | None = None,
        split: str | None = None,
        proportion: float | None = None,
        repeat: float | None = None,
        choose: int | None = None,
        download_retry: int | None = None,
        download_timeout: float | None = None,
        validate_hash: str | None = None,
        keep_zip: bool | None = None,
    ) -> None:
        if remote is None and local is None:
            raise ConfigError("A stream needs remote=, local=, or both.")
        if sum(x is not None for x in (proportion, repeat, choose)) > 1:
            raise ConfigError("Give a stream at most one of proportion=, repeat=, choose=.")
        for name, value in (("proportion", proportion), ("repeat", repeat)):
            if value is not None and not value > 0:
                raise ConfigError(f"{name} must be positive, got {value!r}.")
        if choose is not None and (not isinstance(choose, int) or choose < 1):
            raise ConfigError(f"choose must be a positive integer, got {choose!r}.")
        self.remote = remote
        if remote is not None and not is_remote(remote):
            remote_path = remote[len("file://") :] if remote.startswith("file://") else remote
            if local is not None and os.path.abspath(remote_path) == os.path.abspath(local):
                remote = None  # remote and local are the same directory: nothing to copy
            self.remote = remote
        self.local = os.path.abspath(local) if local else default_local_for(str(remote))
        self.split = split
        self.proportion, self.repeat, self.choose = proportion, repeat, choose
        self.download_retry = download_retry
        self.download_timeout = download_timeout
        self.validate_hash = validate_hash
        self.keep_zip = keep_zip
        self.table: ShardTable | None = None
        self.shards: Sequence[ShardReader] = ()

    def apply_defaults(
        self,
        *,
        download_retry: int,
        download_timeout: float,
        validate_hash: str | None,
        keep_zip: bool,
    ) -> None:
        if self.download_retry is None:
            self.download_retry = download_retry
        if self.download_timeout is None:
            self.download_timeout = download_timeout
        if self.validate_hash is None:
            self.validate_hash = validate_hash
        if self.keep_zip is None:
            self.keep_zip = keep_zip

    @property
    def local_root(self) -> str:
        return os.path.join(self.local, self.split) if self.split else self.local

    @property
    def remote_root(self) -> str | None:
        if self.remote is None:
            return None
        return join_url(self.remote, self.split) if self.split else self.remote

    def describe(self) -> str:
        return self.remote_root or self.local_root

    def _claim_local(self) -> None:
        """Refuse a local directory that caches a different remote (it would mix datasets)."""
        if self.remote_root is None:
            return
        marker = os.path.join(self.local_root, SOURCE_MARKER)
        os.makedirs(self.local_root, exist_ok=True)
        if not os.access(self.local_root, os.W_OK | os.X_OK):
            owner = _owner(self.local_root)
            raise ConfigError(
                f"Local directory {self.local_root} (owned by {owner}) is not writable by user "
                f"{_current_user()}: a cache directory belongs to one user. Pass your own "
                "local=, or omit it (or set STREAMING_LIGHTNING_CACHE) for a per-user default."
            )
        try:
            with open(marker) as file:
                recorded = json.load(file).get("remote")
        except FileNotFoundError:
            atomic_write(marker, json.dumps({"remote": self.remote_root}).encode())
            return
        except (json.JSONDecodeError, AttributeError):
            recorded = None
        if recorded != self.remote_root:
            raise ConfigError(
                f"Local directory {self.local_root} caches {recorded!r}, not {self.remote_root!r}. "
                "Use another local= (or omit it to get a cache directory per remote)."
            )

    def load(self, *, allow_unsafe_types: bool) -> Sequence[ShardReader]:
        """Fetch (if needed) and validate the index; build the shard readers."""
        self._claim_local()
        index_path = os.path.join(self.local_root, INDEX_BASENAME)
        if not os.path.exists(index_path):
            if self.remote_root is None:
                raise MissingFileError(
                    f"No {INDEX_BASENAME} in {self.local_root} and no remote to download it from."
                )
            download_file(
                join_url(self.remote_root, INDEX_BASENAME),
                index_path,
                retry=int(self.download_retry or 0),
                timeout=float(self.download_timeout or 60),
            )
        self.table = load_shared_table(
            index_path, self._table_dir(), exclusive=self.remote_root is not None
        )
        self.shards = ShardList(
            self.table, self.local, self.split, allow_unsafe_types=allow_unsafe_types
        )
        for first in self.table.template_shards:
            self.shards[first]  # refuses unsafe encodings now, not at the first read
        return self.shards

    def _table_dir(self) -> str | None:
        """Where this stream's shard table lives: in its cache directory when it has a remote
        (the cache is ours), else in the user's cache root (never written into a dataset
        directory the user gave us), or nowhere (in memory) if neither is writable."""
        if self.remote_root is not None:
            return os.path.join(self.local_root, SHARD_TABLE_DIR)
        shared = os.path.join(default_cache_root(), "shard-tables")
        try:
            os.makedirs(shared, exist_ok=True)
        except OSError:
            return None
        return shared if os.access(shared, os.W_OK | os.X_OK) else None

    @property
    def shard_table(self) -> ShardTable:
        """The loaded index (see :meth:`load`)."""
        if self.table is None:
            raise ConfigError(f"Stream {self.describe()} is not loaded yet; call load() first.")
        return self.table

    @property
    def shard_sizes(self) -> NDArray[np.int64]:
        return np.array(self.shard_table.samples, np.int64)

    @property
    def num_samples(self) -> int:
        return int(self.shard_sizes.sum())

    def columns(self) -> Any:
        """A comparable description of the columns, to refuse mixing incompatible streams."""
        if not len(self.shards):
            return None
        spec = self.shard_table.spec(0)
        if spec["format"] == "mds":
            return dict(zip(spec["column_names"], spec["column_encodings"]))
        if spec["format"] == "json":
            return dict(spec["columns"])
        return dict(zip(spec["column_names"], spec["column_encodings"]))
