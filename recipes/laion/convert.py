"""img2dataset output (LAION and other image-text crawls) → MDS.

img2dataset writes one *shard* per block of input rows, numbered ``00000``, ``00001`` …:

- ``00000.tar`` (``--output_format webdataset``) or a folder ``00000/`` (``files``) holding
  ``<key>.jpg``, ``<key>.txt`` (the caption) and ``<key>.json`` for every image it fetched;
- ``00000.parquet``: one row per input row — fetched or not — with ``key``, ``url``,
  ``caption``, ``similarity``, ``width``, ``height``, ``status``, ``error_message`` …;
- ``00000_stats.json``, written when the shard is complete.

The parquet is the listing: samples follow its row order, rows whose ``status`` is not
``success`` (dead links, failed resizes: typically a third of a LAION crawl) have no image and
are skipped and counted, and each remaining row is joined by key with its ``<key>.jpg``. A
listed image that is missing or does not decode stops the conversion with the shard and key
named — a crawl that lost files is worth knowing about — unless ``--skip-bad`` is given, for
large crawls where a few broken downloads are expected: then each is named on stderr,
skipped and counted.

Columns (``COLUMNS``) follow mosaicml-streaming's LAION-400M converter, which stores the
parquet's fields next to the image bytes, minus those a training run never reads (status and
error message are constant after the filter; exif, license and NSFW tags are left to the
crawl): ``jpg`` holds the downloaded JPEG bytes exactly as fetched — never re-encoded, so no
quality is lost and the dataset can be checked against the crawl byte for byte — and
``caption``, ``key``, ``url``, ``similarity`` (CLIP image-text cosine similarity; NaN when the
crawl has none), ``width`` and ``height`` (as recorded by img2dataset, else the image's own).
JPEG does not compress further: leave ``--compression`` off.

One conversion task per shard, so ``--workers`` shards convert at once and an interrupted
conversion resumes at the first unfinished shard (see :mod:`recipes.common.convert`).
Rerun with the same ``--min-similarity``/``--skip-bad``: finished shards are not redone.
"""

from __future__ import annotations

import io
import math
import os
import re
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from functools import partial
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any, Protocol

from tqdm import tqdm

from recipes.common.convert import WriteOptions, convert_split
from streaming_lightning.errors import ConfigError, UnsafePathError
from streaming_lightning.format.index import INDEX_BASENAME, load_index
from streaming_lightning.storage.registry import is_remote
from streaming_lightning.storage.transfer import download_file

#: The MDS columns (see the module docstring for why these).
COLUMNS = {
    "jpg": "bytes",
    "caption": "str",
    "key": "str",
    "url": "str",
    "similarity": "float64",
    "width": "int",
    "height": "int",
}
SUCCESS = "success"
#: Parquet columns a shard must have, and those read when present.
REQUIRED = ("key", "status")
OPTIONAL = ("url", "caption", "similarity", "width", "height")
IMAGE_EXTENSION = ".jpg"  # img2dataset's default --encode_format
_SHARD_FILE = re.compile(r"^(\d+)(\.tar|\.parquet|_stats\.json)?$")

Row = dict[str, Any]


@dataclass(frozen=True)
class Shard:
    """One img2dataset shard: a conversion task (picklable: it goes to worker processes)."""

    name: str
    parquet: str
    #: The shard's ``.tar`` or folder.
    images: str
    #: A key of ``IMAGE_SOURCES``: "tar" or "files".
    mode: str

    def where(self, key: str | None = None) -> str:
        return f"shard {self.name} ({self.images})" + (f", key {key}" if key is not None else "")


def find_shards(raw: str) -> list[Shard]:
    """Every shard under ``raw``, in shard order, each checked complete before any work."""
    if not os.path.isdir(raw):
        raise ConfigError(f"No folder {raw}: --in must be an img2dataset output folder.")
    names = set(os.listdir(raw))
    ids = {
        match.group(1)
        for name in names
        if (match := _SHARD_FILE.match(name))
        and (match.group(2) or os.path.isdir(os.path.join(raw, name)))
    }
    if not ids:
        raise ConfigError(
            f"No img2dataset shards in {raw}: expected 00000.tar (or a folder 00000/) with "
            "00000.parquet and 00000_stats.json (img2dataset --output_format webdataset or files)."
        )
    shards = []
    for shard_id in sorted(ids, key=lambda s: (int(s), s)):
        path = partial(os.path.join, raw)
        tar, folder = path(f"{shard_id}.tar"), path(shard_id)
        has_tar, has_folder = os.path.isfile(tar), os.path.isdir(folder)
        if not os.path.isfile(path(f"{shard_id}.parquet")):
            raise ConfigError(
                f"Shard {shard_id} in {raw} has no {shard_id}.parquet (img2dataset writes one "
                "per shard: it lists every sample, failed ones included)."
            )
        if has_tar == has_folder:
            raise ConfigError(
                f"Shard {shard_id} in {raw} needs exactly one of {shard_id}.tar or {shard_id}/ "
                f"(found {'both' if has_tar else 'neither'}). img2dataset's parquet output "
                "format is not read: rerun it with --output_format webdataset or files."
            )
        if not os.path.isfile(path(f"{shard_id}_stats.json")):
            raise ConfigError(
                f"Shard {shard_id} in {raw} has no {shard_id}_stats.json, which img2dataset "
                "writes when a shard is complete: let the download finish (or resume it), "
                "or move the partial shard out of the folder."
            )
        shards.append(
            Shard(
                name=shard_id,
                parquet=path(f"{shard_id}.parquet"),
                images=tar if has_tar else folder,
                mode="tar" if has_tar else "files",
            )
        )
    return shards


def read_rows(
    shard: Shard,
    columns: tuple[str, ...] = REQUIRED + OPTIONAL,
    min_similarity: float | None = None,
) -> list[Row]:
    """The shard's parquet rows (only ``columns``: the listing pass reads a few small ones)."""
    import pyarrow
    import pyarrow.parquet as pq

    required = REQUIRED + (("similarity",) if min_similarity is not None else ())
    try:
        present = set(pq.read_schema(shard.parquet).names)
        missing = [name for name in required if name not in present]
        if missing:
            raise ConfigError(
                f"{shard.parquet}: no column {', '.join(missing)} (needed for "
                f"{'--min-similarity' if missing == ['similarity'] else 'the listing'}); "
                "is this img2dataset's output?"
            )
        table = pq.read_table(shard.parquet, columns=[c for c in columns if c in present])
    except (pyarrow.ArrowException, OSError) as err:
        raise ConfigError(f"{shard.parquet}: not a readable parquet file ({err}).") from None
    return table.to_pylist()


@dataclass
class Tally:
    """What happened to a shard's rows (added up over shards for the report)."""

    rows: int = 0
    #: status != "success": no image was downloaded.
    failed: int = 0
    below_min_similarity: int = 0
    #: Rows to convert (the rest).
    selected: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


def select(rows: list[Row], min_similarity: float | None) -> tuple[list[Row], Tally]:
    """The rows to convert, in order, and the count of each kind skipped.

    A row without a similarity is dropped by ``--min-similarity``: it cannot be shown to pass.
    """
    tally = Tally(rows=len(rows))
    kept = []
    for row in rows:
        if row.get("status") != SUCCESS:
            tally.failed += 1
            continue
        if min_similarity is not None:
            similarity = row.get("similarity")
            if similarity is None or not similarity >= min_similarity:  # NaN fails too
                tally.below_min_similarity += 1
                continue
        kept.append(row)
    tally.selected = len(kept)
    return kept, tally


def tally_shard(shard: Shard, min_similarity: float | None) -> Tally:
    rows = read_rows(shard, ("key", "status", "similarity"), min_similarity)
    return select(rows, min_similarity)[1]


def check_key(shard: Shard, key: Any) -> str:
    """A row's key as a file name: keys come from the parquet and name files, so one that is
    not a plain name (``../x``, ``/etc/x``) is refused rather than joined to a path."""
    if key is None:
        raise ConfigError(f"{shard.parquet}: a successful row has no key.")
    key = str(key)
    if (
        key in ("", ".", "..")
        or "\x00" in key
        or len(PurePosixPath(key).parts) != 1
        or len(PureWindowsPath(key).parts) != 1
    ):
        raise UnsafePathError(
            f"{shard.parquet}: key {key!r} is not a plain file name; refusing to look it up "
            "(img2dataset keys are digits)."
        )
    return key


class ImageSource(Protocol):
    """A shard's files by name; ``read`` returns None for a file that is not there."""

    def read(self, name: str) -> bytes | None: ...

    def close(self) -> None: ...


def _escapes(name: str) -> bool:
    posix, windows = PurePosixPath(name), PureWindowsPath(name)
    return (
        posix.is_absolute()
        or bool(windows.drive or windows.root)
        or ".." in posix.parts
        or ".." in windows.parts
    )


class TarImages:
    """A webdataset tar read in memory: member headers are indexed once, then each member's
    bytes are read on demand. Nothing is ever extracted to disk; a member whose name would
    escape an extraction folder (absolute, ``..``) marks a tar img2dataset did not write, and
    the whole shard is refused. Links are not followed: a key whose file is a link is absent.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._members: dict[str, tarfile.TarInfo] = {}
        try:
            self._tar = tarfile.open(path, "r:*")  # noqa: SIM115 (kept open: close() ends it)
        except tarfile.TarError as err:
            raise ConfigError(f"{path}: not a readable tar file ({err}).") from None
        try:
            for member in self._tar:  # headers only: data is skipped over
                if _escapes(member.name):
                    raise UnsafePathError(
                        f"{path}: member {member.name!r} is an absolute or '..' path; refusing "
                        "this tar (img2dataset writes plain <key>.jpg names)."
                    )
                if member.isfile():  # "./x.jpg" (a repacked shard) is found as "x.jpg"
                    self._members[str(PurePosixPath(member.name))] = member
        except BaseException as err:
            self._tar.close()
            if isinstance(err, tarfile.TarError):
                raise ConfigError(f"{path}: not a readable tar file ({err}).") from None
            raise

    def read(self, name: str) -> bytes | None:
        member = self._members.get(name)
        if member is None:
            return None
        try:
            file = self._tar.extractfile(member)
            assert file is not None  # a regular file always has data
            return file.read()
        except tarfile.TarError as err:
            raise ConfigError(f"{self.path}: member {name} is unreadable ({err}).") from None

    def close(self) -> None:
        self._tar.close()


class FolderImages:
    """A ``files``-mode shard folder. Names are checked plain keys (``check_key``), and links
    are not followed, so nothing outside the folder is read."""

    def __init__(self, path: str) -> None:
        self.path = path

    def read(self, name: str) -> bytes | None:
        path = os.path.join(self.path, name)
        if os.path.islink(path) or not os.path.isfile(path):
            return None
        with open(path, "rb") as file:
            return file.read()

    def close(self) -> None:
        pass


#: Shard mode → how its files are read.
IMAGE_SOURCES: dict[str, type[TarImages] | type[FolderImages]] = {
    "tar": TarImages,
    "files": FolderImages,
}


def probe_image(data: bytes) -> tuple[int, int]:
    """The image's (width, height), after decoding it completely — at reduced scale (JPEG draft
    mode), which is cheap but still reads every byte, so truncated files are caught.
    Raises ValueError saying what is wrong."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            size = image.size
            image.draft("RGB", (64, 64))
            image.load()
    except Exception as err:  # Pillow raises many kinds on bad data
        raise ValueError(f"not a decodable image ({err})") from None
    return size


def _int(value: Any, default: int) -> int:
    return (
        default if value is None or (isinstance(value, float) and math.isnan(value)) else int(value)
    )


def to_sample(row: Row, key: str, jpg: bytes, caption: str, size: tuple[int, int]) -> Row:
    similarity = row.get("similarity")
    return {
        "jpg": jpg,
        "caption": caption,
        "key": key,
        "url": row.get("url") or "",
        "similarity": math.nan if similarity is None else float(similarity),
        "width": _int(row.get("width"), size[0]),
        "height": _int(row.get("height"), size[1]),
    }


def encode_shard(
    shard: Shard, min_similarity: float | None = None, skip_bad: bool = False
) -> Iterator[Row]:
    """The shard's samples in parquet order (runs in a worker process)."""
    rows, _ = select(read_rows(shard, min_similarity=min_similarity), min_similarity)
    source = IMAGE_SOURCES[shard.mode](shard.images)
    try:
        for row in rows:
            key = check_key(shard, row["key"])
            name = key + IMAGE_EXTENSION
            jpg = source.read(name)
            try:
                if jpg is None:
                    raise ValueError(f"no image file {name}")
                size = probe_image(jpg)
            except ValueError as err:
                if not skip_bad:
                    raise ConfigError(
                        f"{shard.where(key)}: {err}. Pass --skip-bad to skip such samples "
                        "(each is named and counted)."
                    ) from None
                tqdm.write(f"skipped {shard.where(key)}: {err}", file=sys.stderr)
                continue
            caption = row.get("caption")
            if caption is None and "caption" not in row:  # no caption column: the .txt file
                text = source.read(key + ".txt")
                caption = text.decode("utf-8", "replace") if text is not None else ""
            yield to_sample(row, key, jpg, caption or "", size)
    finally:
        source.close()


def count_samples(index: str) -> int:
    """Samples listed in a merged index (local path or URL)."""
    if not is_remote(index):
        return sum(int(shard["samples"]) for shard in load_index(index))
    with tempfile.TemporaryDirectory() as scratch:
        local = download_file(index, os.path.join(scratch, INDEX_BASENAME))
        return sum(int(shard["samples"]) for shard in load_index(local))


def convert(
    raw: str,
    options: WriteOptions,
    split: str | None = "train",
    min_similarity: float | None = None,
    skip_bad: bool = False,
) -> dict[str, Any]:
    """Convert the crawl in ``raw`` to ``<out>/<split>``; returns the report: {split: merged
    index path/URL, "samples": written, "failed_rows": rows without an image (status not
    success), "below_min_similarity", "bad_images_skipped": missing or undecodable images}.

    Every shard's parquet is read first (a few small columns, in threads), so a malformed
    shard stops the run before any work and the skip counts cover resumed parts too.
    """
    shards = find_shards(raw)
    with ThreadPoolExecutor(8) as pool:
        tallies = list(
            tqdm(
                pool.map(partial(tally_shard, min_similarity=min_similarity), shards),
                total=len(shards),
                desc="read parquet",
                unit=" shard",
                disable=not options.progress,
            )
        )
    total = sum(tallies, Tally())
    if not total.selected:
        raise ConfigError(
            f"Nothing to convert in {raw}: of {total.rows} rows, {total.failed} have no image "
            f"and {total.below_min_similarity} are below --min-similarity."
        )
    encode = partial(encode_shard, min_similarity=min_similarity, skip_bad=skip_bad)
    index = convert_split(shards, encode, COLUMNS, options, split=split, unit="shard")
    written = count_samples(index)
    bad = total.selected - written
    if bad < 0 or (bad and not skip_bad):
        print(
            f"warning: {index} holds {written} samples, not the {total.selected} these options "
            "select: it was converted with other options (pass --force to redo it)",
            file=sys.stderr,
        )
    return {
        split or "dataset": index,
        "samples": written,
        "failed_rows": total.failed,
        "below_min_similarity": total.below_min_similarity,
        "bad_images_skipped": max(bad, 0),
    }
