"""``verify``: prove a dataset is intact before spending GPU hours on it.

Training checks at most one digest per file, and only of the files it happens to fetch; a
shard corrupted at rest (bit rot, a truncated upload, a replaced file) otherwise surfaces hours
into a run. This re-checks every shard file against index.json: its size, every digest the
index records for it (stored and, for compressed shards, decompressed form), and that the
library's reader accepts its structure (MDS: the offset table parses and spans the file).

Nothing is written into the dataset: compressed shards are decompressed into a scratch
directory, and a remote dataset is fetched there a shard at a time (``--workers`` at a time)
and deleted once checked, so verifying needs disk for a few shards, not the dataset.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TextIO

from tqdm import tqdm

from streaming_lightning.cli._common import (
    Commands,
    dataset_root,
    human,
    load_any_index,
    positive_int,
)
from streaming_lightning.errors import RemoteNotFoundError, StorageError, StreamingError
from streaming_lightning.format.compression import decompress
from streaming_lightning.format.hashing import hash_bytes, hash_file
from streaming_lightning.format.index import FileInfo
from streaming_lightning.format.readers import reader_from_json
from streaming_lightning.fsutil import safe_join
from streaming_lightning.storage.local import local_path_of
from streaming_lightning.storage.registry import is_remote
from streaming_lightning.storage.transfer import download_file
from streaming_lightning.storage.uploader import join_url

#: The files a shard may have, as index.json names them (``raw_data``, ``zip_meta`` ...).
ROLES = ("data", "meta")

#: ``fetch(basename, scratch_dir)``: a local path holding the stored file, or None if missing.
Fetch = Callable[[str, str], str | None]


@dataclass(frozen=True)
class Problem:
    """One way a shard file differs from what index.json says about it."""

    file: str  # as index.json names it, relative to the dataset root
    what: str  # "size differs", "xxh64 digest differs", "missing", "unreadable", ...
    detail: str

    def __str__(self) -> str:
        return f"{self.file}: {self.what}: {self.detail}"


def _differs(file: str, what: str, expected: object, actual: object) -> Problem:
    return Problem(file, f"{what} differs", f"expected {expected}, actual {actual}")


@dataclass
class ShardReport:
    shard: int
    files: int = 0
    bytes: int = 0
    digests: set[str] = field(default_factory=set)
    problems: list[Problem] = field(default_factory=list)


# ------------------------------------------------------------------------------ checking


def _check_digests(info: FileInfo, digest_of: Callable[[str], str], report: ShardReport) -> None:
    for algo, expected in sorted(info.hashes.items()):
        try:
            actual = digest_of(algo)
        except StreamingError as err:  # an algorithm this installation does not know
            report.problems.append(Problem(info.basename, f"{algo} digest not checked", str(err)))
            continue
        report.digests.add(algo)
        if actual != expected:
            report.problems.append(_differs(info.basename, f"{algo} digest", expected, actual))


def check_shard(
    shard: int, spec: dict[str, Any], fetch: Fetch, scratch: str, in_place: str | None
) -> ShardReport:
    """Check one shard's files against its index entry ``spec``.

    ``fetch`` makes each stored file available (in ``scratch`` for a remote dataset); a
    compressed file is decompressed into ``scratch``. ``in_place`` is the local dataset root
    when its uncompressed files can be opened where they are (nothing is copied then).
    """
    report = ShardReport(shard)
    compressed = spec.get("compression") is not None
    # Only offsets and the shard's column config are parsed, never samples, so columns that
    # would unpickle on decode are no risk here.
    reader = reader_from_json(
        in_place if in_place and not compressed else scratch, None, spec, allow_unsafe_types=True
    )
    readable = True  # the structure is checked only when every file has the right size
    for raw, zipped in reader.file_pairs():
        stored = zipped or raw
        path = fetch(stored.basename, scratch)
        report.files += 1
        if path is None:
            report.problems.append(
                Problem(stored.basename, "missing", f"expected {stored.bytes} bytes, found no file")
            )
            readable = False
            continue
        size = os.path.getsize(path)
        report.bytes += size
        if size != stored.bytes:
            report.problems.append(
                _differs(stored.basename, "size", f"{stored.bytes} bytes", f"{size} bytes")
            )
            readable = False
            continue
        _check_digests(stored, partial(hash_file, path=path), report)
        if zipped is None:
            continue
        with open(path, "rb") as file:
            data = file.read()
        try:
            raw_bytes = decompress(
                reader.compression, data, source=stored.basename, max_size=raw.bytes
            )
        except StreamingError as err:
            report.problems.append(Problem(stored.basename, "does not decompress", str(err)))
            readable = False
            continue
        if len(raw_bytes) != raw.bytes:
            report.problems.append(
                _differs(
                    raw.basename,
                    "decompressed size",
                    f"{raw.bytes} bytes",
                    f"{len(raw_bytes)} bytes",
                )
            )
            readable = False
            continue
        _check_digests(raw, partial(hash_bytes, data=raw_bytes), report)
        raw_path = safe_join(scratch, raw.basename, source="index.json")
        os.makedirs(os.path.dirname(raw_path), exist_ok=True)
        with open(raw_path, "wb") as file:
            file.write(raw_bytes)
    if readable:
        try:
            reader.open()
        except (StreamingError, OSError) as err:
            # Blame the file the reader names (by its path, maybe in scratch: shown relative).
            message = str(err)
            names = [raw.basename for raw, _ in reader.file_pairs()]
            name = next((n for n in names if f"{reader.path_of(n)}: " in message), names[0])
            message = message.replace(reader.path_of(name) + ": ", "")
            report.problems.append(Problem(name, "unreadable", message))
        finally:
            reader.close()
    return report


def local_fetch(root: str) -> Fetch:
    """Files of a local dataset are checked where they are."""

    def fetch(basename: str, scratch: str) -> str | None:
        path = safe_join(root, basename, source=os.path.join(root, "index.json"))
        return path if os.path.isfile(path) else None

    return fetch


def remote_fetch(root: str, retry: int, timeout: float) -> Fetch:
    """Files of a remote dataset are downloaded into the shard's scratch directory. The size is
    not passed to the download, so a wrong-sized object is reported rather than retried."""

    def fetch(basename: str, scratch: str) -> str | None:
        dest = safe_join(scratch, basename, source=join_url(root, "index.json"))
        try:
            return download_file(join_url(root, basename), dest, retry=retry, timeout=timeout)
        except RemoteNotFoundError:
            return None

    return fetch


def _check_in_scratch(
    shard: int, spec: dict[str, Any], fetch: Fetch, tmp: str, in_place: str | None
) -> ShardReport:
    scratch = os.path.join(tmp, f"shard-{shard}")
    os.makedirs(scratch)
    try:
        return check_shard(shard, spec, fetch, scratch, in_place)
    except StorageError as err:  # a download that still failed after its retries
        report = ShardReport(shard)
        name = (spec.get("zip_data") or spec["raw_data"])["basename"]
        report.problems.append(Problem(name, "download failed", str(err)))
        return report
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# ------------------------------------------------------------------------------ command


def verify(
    location: str,
    split: str | None = None,
    *,
    workers: int = 1,
    retry: int = 2,
    timeout: float = 60.0,
    out: TextIO | None = None,
) -> list[ShardReport]:
    """Check every shard of the dataset; print each problem as it is found (on ``out``)
    above a progress bar; return the per-shard reports in shard order."""
    remote = is_remote(location)
    if not remote:
        location = local_path_of(location)
    _, shards = load_any_index(location, split)
    root = dataset_root(location, split)
    fetch = remote_fetch(root, retry, timeout) if remote else local_fetch(root)
    in_place = None if remote else root
    stored = [
        sum((s.get(f"zip_{role}") or s.get(f"raw_{role}") or {}).get("bytes", 0) for role in ROLES)
        for s in shards
    ]
    reports: list[ShardReport] = []
    with (
        tempfile.TemporaryDirectory(prefix="sl-verify-") as tmp,
        ThreadPoolExecutor(max(1, workers)) as pool,
        tqdm(
            total=sum(stored),
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=f"verify {root}",
            file=sys.stderr,
        ) as bar,
    ):
        futures = [
            pool.submit(_check_in_scratch, i, spec, fetch, tmp, in_place)
            for i, spec in enumerate(shards)
        ]
        try:
            for future in as_completed(futures):
                report = future.result()
                reports.append(report)
                for problem in report.problems:
                    bar.write(str(problem), file=out or sys.stdout)
                bar.update(stored[report.shard])
        except BaseException:  # Ctrl-C or a bug: do not check the rest first
            for future in futures:
                future.cancel()
            raise
    reports.sort(key=lambda r: r.shard)
    return reports


def summary(root: str, reports: list[ShardReport]) -> str:
    """The closing line: what was checked, and whether anything differed."""
    files = sum(r.files for r in reports)
    size = sum(r.bytes for r in reports)
    digests = sorted(set().union(*(r.digests for r in reports))) if reports else []
    problems = sum(len(r.problems) for r in reports)
    bad = sum(bool(r.problems) for r in reports)
    checked = f"{len(reports)} shards of {root} ({files} files, {human(size)})"
    what = (
        f"sizes, structure and {'/'.join(digests)} digests"
        if digests
        else "sizes and structure only: no digests were stored in index.json"
    )
    if problems:
        return f"FAILED: {problems} problem{'s' * (problems != 1)} in {bad} of {checked}; checked {what}."
    return f"OK: {checked}; checked {what}."


def register(commands: Commands) -> None:
    parser = commands.add_parser(
        "verify",
        help="re-check every shard's size, digests and structure against index.json",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Exit status: 0 all shards match, 1 some differ (one line each), 2 usage error.",
    )
    parser.add_argument("location", help="dataset directory or URL (s3://, gs://, ...)")
    parser.add_argument("--split", default=None, help="sub-directory holding index.json")
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="shards checked (and, for a remote dataset, held on disk) at once (default 1)",
    )
    parser.add_argument("--retry", type=int, default=2, help="download retries per file")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per download step")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    reports = verify(
        args.location, args.split, workers=args.workers, retry=args.retry, timeout=args.timeout
    )
    print(summary(dataset_root(args.location, args.split), reports))
    return 1 if any(r.problems for r in reports) else 0
