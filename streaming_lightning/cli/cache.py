"""``cache ls`` / ``cache clean``: see and reclaim the disk that dataset caches hold.

Every remote read without ``local=`` gets its own directory under the per-user cache root, so
caches pile up across projects. Cleaning must never cost a running job its data or touch
anything else, so a directory is removed only when

- it carries the ``.streaming-lightning-source.json`` marker a cache writes when it is
  created (anything else under the root is left alone), and
- no process holds any lock in it: every ``.locks/*.lease`` (a reader's ``flock``, taken while
  a job with ``cache_limit`` reads a shard) and ``.locks/*.lock`` (a download, decompression
  or eviction in progress) is locked exclusively, without waiting, and held while the
  directory is removed. A job reading without ``cache_limit`` takes no leases; clean only
  caches you know are idle, or use ``--older-than``.

"Last used" is the newest access or modification time of any file in the directory (reading
a shard or the index updates it, at least daily on ``relatime`` mounts).

A cache read with ``split=`` keeps its marker in the split's sub-directory; such a
sub-directory is a cache of its own here.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from streaming_lightning.cli._common import Commands, human
from streaming_lightning.dataset.stream import SOURCE_MARKER, default_cache_root
from streaming_lightning.format.index import INDEX_BASENAME

LOCKS_DIR = ".locks"
LOCK_SUFFIXES = (".lease", ".lock")


@dataclass(frozen=True)
class CacheDir:
    """One dataset cache: a directory holding the source marker."""

    path: str
    remote: str
    size: int  # bytes on disk (allocated blocks, as du counts them)
    shard_files: int
    last_used: float  # newest atime/mtime of any file in it


def _has_marker(path: str) -> bool:
    try:
        return os.path.isfile(os.path.join(path, SOURCE_MARKER)) and not os.path.islink(
            os.path.join(path, SOURCE_MARKER)
        )
    except OSError:
        return False


def _subdirs(path: str) -> list[str]:
    """Real sub-directories (never symlinks: a link could lead out of the cache root)."""
    try:
        with os.scandir(path) as entries:
            return sorted(e.path for e in entries if e.is_dir(follow_symlinks=False))
    except OSError:
        return []


def _describe(path: str) -> CacheDir:
    try:
        with open(os.path.join(path, SOURCE_MARKER)) as file:
            remote = str(json.load(file).get("remote"))
    except (OSError, ValueError, AttributeError):
        remote = "(unreadable marker)"
    size, shards, last = 0, 0, 0.0
    for top, _dirs, files in os.walk(path):
        relative = os.path.relpath(top, path)
        hidden = relative != "." and any(p.startswith(".") for p in relative.split(os.sep))
        for name in files:
            try:
                st = os.lstat(os.path.join(top, name))
            except OSError:
                continue  # removed while we looked
            size += getattr(st, "st_blocks", 0) * 512 or st.st_size
            # Listing reads the marker, so its atime says only that someone ran `cache ls`.
            touched = st.st_mtime if name == SOURCE_MARKER else max(st.st_atime, st.st_mtime)
            last = max(last, touched)
            if not hidden and not name.startswith(".") and name != INDEX_BASENAME:
                shards += 1
    return CacheDir(path, remote, size, shards, last or os.lstat(path).st_mtime)


def find_caches(root: str) -> tuple[list[CacheDir], list[str]]:
    """(dataset caches, other directories) directly under ``root``, or one level deeper for
    caches of a split; the others are never touched."""
    caches, others = [], []
    for path in _subdirs(root):
        if _has_marker(path):
            caches.append(_describe(path))
            continue
        splits = [sub for sub in _subdirs(path) if _has_marker(sub)]
        if splits:
            caches.extend(_describe(sub) for sub in splits)
        else:
            others.append(path)
    return caches, others


def _lock_files(path: str) -> list[str]:
    found: list[str] = []
    for top, _dirs, files in os.walk(path):
        if os.path.basename(top) == LOCKS_DIR:
            found.extend(os.path.join(top, f) for f in files if f.endswith(LOCK_SUFFIXES))
    return sorted(found)


@contextlib.contextmanager
def exclusive(path: str) -> Iterator[str | None]:
    """Lock every lease and lock file under ``path`` exclusively, without waiting, and hold
    them for the ``with`` body. Yields None when all were taken, else the first file some
    process holds (then nothing stays locked)."""
    fds: list[int] = []
    busy: str | None = None
    try:
        for lock in _lock_files(path):
            try:
                fd = os.open(lock, os.O_RDONLY)
            except FileNotFoundError:
                continue  # released and cleaned up meanwhile
            except OSError:
                busy = lock  # cannot tell whether it is held: assume it is
                break
            fds.append(fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                busy = lock
                break
        yield busy
    finally:
        for fd in fds:
            os.close(fd)


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def _root(args: argparse.Namespace) -> str | None:
    """The cache root to work on; None when the default one was never created."""
    if args.root is None:
        root = default_cache_root()
        return root if os.path.isdir(root) else None
    if not os.path.exists(args.root):
        raise FileNotFoundError(f"Cache root {args.root} does not exist.")
    if not os.path.isdir(args.root):
        raise NotADirectoryError(f"Cache root {args.root} is not a directory.")
    return str(args.root)


# ------------------------------------------------------------------------------ commands


def run_ls(args: argparse.Namespace) -> int:
    root = _root(args)
    if root is None:
        print(f"no dataset caches: {default_cache_root()} does not exist")
        return 0
    caches, others = find_caches(root)
    if caches:
        print(f"{'LAST USED':<16}  {'SIZE':>10}  {'SHARDS':>6}  DIRECTORY  (REMOTE)")
    for cache in sorted(caches, key=lambda c: c.last_used, reverse=True):
        print(
            f"{_when(cache.last_used):<16}  {human(cache.size):>10}  {cache.shard_files:>6}  "
            f"{cache.path}  ({cache.remote})"
        )
    total = sum(c.size for c in caches)
    print(f"{len(caches)} dataset caches, {human(total)} under {root}")
    if others:
        print(f"{len(others)} other directories there are not dataset caches (never cleaned)")
    return 0


def run_clean(args: argparse.Namespace) -> int:
    root = _root(args)
    if root is None:
        print(f"nothing to clean: {default_cache_root()} does not exist")
        return 0
    caches, _ = find_caches(root)
    cutoff = time.time() - (args.older_than or 0) * 86400
    chosen = [
        c for c in sorted(caches, key=lambda c: c.last_used) if args.all or c.last_used < cutoff
    ]
    verb = "would remove" if args.dry_run else "removed"
    freed, removed, skipped = 0, 0, 0
    for cache in chosen:
        with exclusive(cache.path) as busy:
            if busy is not None:
                skipped += 1
                print(
                    f"skipped {cache.path}: in use ({os.path.relpath(busy, cache.path)} is locked)"
                )
                continue
            if not _has_marker(cache.path):
                continue  # removed by someone else since we listed it
            if not args.dry_run:
                try:
                    shutil.rmtree(cache.path)
                except OSError as err:  # e.g. a file another user made: report, go on
                    print(f"could not remove all of {cache.path}: {err}")
                    continue
        parent = os.path.dirname(cache.path)
        if not args.dry_run and os.path.abspath(parent) != os.path.abspath(root):
            with contextlib.suppress(OSError):
                os.rmdir(parent)  # the split's parent, only if nothing else is left in it
        freed += cache.size
        removed += 1
        print(
            f"{verb} {cache.path} ({cache.remote}, {human(cache.size)}, "
            f"last used {_when(cache.last_used)})"
        )
    kept = len(caches) - removed
    print(
        f"{verb} {removed} dataset caches ({human(freed)}); {kept} kept"
        + (f", {skipped} of them in use" if skipped else "")
    )
    return 0


def _days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of days, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number of days >= 0, got {text}")
    return value


def register(commands: Commands) -> None:
    parser = commands.add_parser(
        "cache",
        help="list or clean local dataset caches",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True)
    root_help = "cache root (default: $STREAMING_LIGHTNING_CACHE or ~/.cache/streaming-lightning)"

    ls = actions.add_parser(
        "ls",
        help="one line per cached dataset",
        description="List dataset caches: last used, size on disk, shard files, directory and "
        "the remote each caches, most recently used first.",
    )
    ls.add_argument("--root", default=None, help=root_help)
    ls.set_defaults(run=run_ls)

    clean = actions.add_parser(
        "clean",
        help="remove dataset caches (least recently used first)",
        description="Remove whole dataset cache directories, least recently used first: those "
        "unused for --older-than DAYS, or all with --all. Directories without the cache marker "
        "and caches a process holds a lock in are never removed.",
    )
    clean.add_argument("--root", default=None, help=root_help)
    which = clean.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--older-than", type=_days, metavar="DAYS", help="remove caches unused for DAYS days"
    )
    which.add_argument("--all", action="store_true", help="remove every idle dataset cache")
    clean.add_argument("--dry-run", action="store_true", help="print what would go, remove nothing")
    clean.set_defaults(run=run_clean)
