"""WebVid-10M (metadata CSV + a local crawl of its mp4 files) → MDS.

Raw layout — what the official release and its usual downloaders (video2dataset, the
``page_dir`` scripts) give you:

- the metadata CSV, e.g. ``results_2M_train.csv`` or ``results_10M_val.csv``, with the header
  ``videoid,contentUrl,duration,page_dir,name`` (``name`` is the caption, ``duration`` an ISO
  8601 duration such as ``PT00H00M11S``; any column order, extra columns ignored);
- the videos, ``<videos>/<page_dir>/<videoid>.mp4`` (or flat, ``<videos>/<videoid>.mp4``).

A crawl always has holes: rows whose video file is missing are skipped and counted. A file
that is there but does not decode stops the conversion naming it — or, with ``--skip-bad``, is
skipped, named on stderr and counted.

Output columns, in ``<out>/<split>`` (one split per CSV: ``--split train`` / ``--split val``):
``video`` (the mp4 file, byte for byte — decoding and resizing happen at training time, so one
conversion serves any frame count and size), ``caption``, ``videoid``, ``duration`` (seconds),
``page_dir`` and ``url``.

Tasks are chunks of ``--rows-per-part`` CSV rows (present or not) in file order, so the parts
— and a resumed run — do not depend on which videos are there. A task is a byte range of the
CSV, not its rows: a 10M-row CSV never sits in memory, in this process or in a worker. Resume
with the same ``--csv`` and ``--rows-per-part`` (anything else needs ``--force``).
"""

from __future__ import annotations

import csv
import io
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import PurePath
from typing import Any, BinaryIO

from recipes.common.convert import WriteOptions, convert_split
from recipes.webvid.video import check_video
from streaming_lightning.errors import ConfigError, CorruptDataError
from streaming_lightning.format.index import load_index
from streaming_lightning.storage.registry import is_remote
from streaming_lightning.storage.transfer import download_file

#: The CSV columns the converter reads (the release's header, in its order).
CSV_FIELDS = ("videoid", "contentUrl", "duration", "page_dir", "name")
COLUMNS = {
    "video": "bytes",
    "caption": "str",
    "videoid": "int",
    "duration": "float64",
    "page_dir": "str",
    "url": "str",
}
_DURATION = re.compile(
    r"P(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?"
)
_SECONDS = {"days": 86400.0, "hours": 3600.0, "minutes": 60.0, "seconds": 1.0}


def parse_duration(text: str) -> float:
    """Seconds in an ISO 8601 duration (``PT00H00M11S`` → 11.0; days to seconds, fractions
    allowed). Raises ValueError on anything else, including a bare ``P`` or ``PT``."""
    match = _DURATION.fullmatch(text.strip())
    if not match or not any(match.groupdict().values()) or text.strip().endswith("T"):
        raise ValueError(f"not an ISO 8601 duration like PT00H00M11S: {text!r}")
    return sum(float(v) * _SECONDS[k] for k, v in match.groupdict().items() if v)


@dataclass(frozen=True)
class Row:
    """One CSV row's metadata, checked."""

    line: int
    videoid: int
    url: str
    duration: float
    page_dir: str
    caption: str


@dataclass(frozen=True)
class Chunk:
    """One task: the CSV bytes ``[start, stop)``, whose first row is on ``line``."""

    csv: str
    start: int
    stop: int
    line: int
    #: Where each of CSV_FIELDS is in a row (from the header).
    fields: tuple[int, ...]
    videos: str


@dataclass(frozen=True)
class Scan:
    chunks: list[Chunk]
    rows: int
    missing: int


def records(file: BinaryIO, line: int = 1) -> Iterator[tuple[int, int, bytes]]:
    """(byte offset, line number, bytes) of each CSV record from the file's position.

    A record ends at a newline outside quotes; RFC 4180 quoting (what pandas writes: ``"``
    doubled inside quoted fields) keeps the count of ``"`` even exactly at record ends, so a
    caption with commas, quotes or newlines stays one record.
    """
    offset = file.tell()
    pending: list[bytes] = []
    quotes = 0
    for piece in file:
        pending.append(piece)
        quotes += piece.count(b'"')
        if quotes % 2:
            continue
        record = b"".join(pending)
        yield offset, line, record
        offset += len(record)
        line += record.count(b"\n")
        pending, quotes = [], 0
    if pending:
        yield offset, line, b"".join(pending)


def parse_record(record: bytes, where: str, encoding: str = "utf-8") -> list[str]:
    try:
        text = record.decode(encoding)
    except UnicodeDecodeError as err:
        raise ConfigError(f"{where}: not UTF-8 ({err}); WebVid CSVs are UTF-8.") from None
    try:
        return next(csv.reader([text]), [])
    except csv.Error as err:
        raise ConfigError(f"{where}: not a valid CSV row ({err}).") from None


def header_fields(path: str, header: list[str]) -> tuple[int, ...]:
    """The position of each of CSV_FIELDS in the header row."""
    names = [name.strip() for name in header]
    missing = [name for name in CSV_FIELDS if name not in names]
    if missing:
        raise ConfigError(
            f"{path}: the header lacks {', '.join(missing)}; a WebVid metadata CSV starts with "
            f"{','.join(CSV_FIELDS)} (got {','.join(names)[:200]})."
        )
    return tuple(names.index(name) for name in CSV_FIELDS)


def parse_row(values: list[str], fields: tuple[int, ...], where: str, line: int) -> Row:
    if len(values) <= max(fields):
        raise ConfigError(f"{where}: {len(values)} fields, the header has more; fix the row.")
    videoid, url, duration, page_dir, caption = (values[i] for i in fields)
    try:
        number = int(videoid)
    except ValueError:
        raise ConfigError(f"{where}: videoid {videoid!r} is not an integer.") from None
    try:
        seconds = parse_duration(duration)
    except ValueError as err:
        raise ConfigError(f"{where}: {err}.") from None
    return Row(line, number, url, seconds, page_dir, caption)


def rows_of(chunk: Chunk) -> Iterator[Row]:
    """The checked rows of one chunk, read straight from its byte range."""
    with open(chunk.csv, "rb") as file:
        file.seek(chunk.start)
        data = file.read(chunk.stop - chunk.start)
    for _, line, record in records(io.BytesIO(data), chunk.line):
        if record.strip():
            where = f"{chunk.csv}:{line}"
            yield parse_row(parse_record(record, where), chunk.fields, where, line)


def find_video(videos: str, row: Row, where: str) -> str | None:
    """``<videos>/<page_dir>/<videoid>.mp4``, else ``<videos>/<videoid>.mp4``, else None."""
    page_dir = PurePath(row.page_dir)
    if page_dir.is_absolute() or ".." in page_dir.parts:
        # The CSV is input we did not write: it must not point outside --videos.
        raise ConfigError(f"{where}: page_dir {row.page_dir!r} leaves the videos directory.")
    name = f"{row.videoid}.mp4"
    for path in (os.path.join(videos, row.page_dir, name), os.path.join(videos, name)):
        if os.path.isfile(path):
            return path
    return None


def scan(path: str, videos: str, rows_per_part: int) -> Scan:
    """Check the whole CSV (before any worker starts, so a bad row stops the run at once),
    count rows and missing videos, and cut it into chunks of ``rows_per_part`` rows."""
    if rows_per_part < 1:
        raise ConfigError(f"--rows-per-part must be >= 1, got {rows_per_part}.")
    if not os.path.isfile(path):
        raise ConfigError(f"No WebVid metadata CSV at {path} (pass --csv results_2M_train.csv).")
    if not os.path.isdir(videos):
        raise ConfigError(f"No videos directory {videos} (pass --videos, the crawl's root).")
    chunks: list[Chunk] = []
    rows = missing = 0
    fields: tuple[int, ...] | None = None
    start = line = end = 0
    with open(path, "rb") as file:
        for offset, number, record in records(file):
            end = offset + len(record)
            if not record.strip():
                continue
            where = f"{path}:{number}"
            if fields is None:
                fields = header_fields(path, parse_record(record, where, "utf-8-sig"))
                continue
            row = parse_row(parse_record(record, where), fields, where, number)
            if rows % rows_per_part == 0:
                if rows:
                    chunks.append(Chunk(path, start, offset, line, fields, videos))
                start, line = offset, number
            rows += 1
            missing += find_video(videos, row, where) is None
    if fields is None:
        raise ConfigError(f"{path} is empty; expected the header {','.join(CSV_FIELDS)}.")
    if rows:
        chunks.append(Chunk(path, start, end, line, fields, videos))
    return Scan(chunks, rows, missing)


def encode_chunk(chunk: Chunk, skip_bad: bool) -> Iterator[dict[str, Any]]:
    """The samples of one chunk's rows whose video is there (and decodes)."""
    for row in rows_of(chunk):
        where = f"{chunk.csv}:{row.line}"
        path = find_video(chunk.videos, row, where)
        if path is None:
            continue  # counted by scan()
        with open(path, "rb") as file:
            video = file.read()
        try:
            check_video(video, path)
        except CorruptDataError as err:
            if not skip_bad:
                raise ConfigError(
                    f"{err} (videoid {row.videoid}, {where}). Replace or delete the file, or "
                    "pass --skip-bad to leave such videos out."
                ) from None
            print(f"skipped: {err}", file=sys.stderr)
            continue
        yield {
            "video": video,
            "caption": row.caption,
            "videoid": row.videoid,
            "duration": row.duration,
            "page_dir": row.page_dir,
            "url": row.url,
        }


def count_samples(index: str) -> int:
    """Samples in a written dataset, from its merged index (downloaded when remote)."""
    if not is_remote(index):
        return sum(shard["samples"] for shard in load_index(index))
    with tempfile.TemporaryDirectory(prefix="webvid-index-") as tmp:
        local = download_file(index, os.path.join(tmp, "index.json"))
        return sum(shard["samples"] for shard in load_index(local))


def convert(
    csv_path: str,
    videos: str,
    options: WriteOptions,
    split: str = "train",
    rows_per_part: int = 500,
    skip_bad: bool = False,
) -> dict[str, Any]:
    """Convert one metadata CSV and its videos into ``<out>/<split>``; returns the merged
    index and the counts: CSV rows, videos missing, unreadable videos skipped, samples."""
    found = scan(csv_path, videos, rows_per_part)
    if not found.rows:
        raise ConfigError(f"{csv_path} has a header but no rows: nothing to convert.")
    if found.rows == found.missing:
        raise ConfigError(
            f"None of the {found.rows} videos of {csv_path} is under {videos} (looked for "
            "<videos>/<page_dir>/<videoid>.mp4 and <videos>/<videoid>.mp4)."
        )
    encode = partial(encode_chunk, skip_bad=skip_bad)
    index = convert_split(found.chunks, encode, COLUMNS, options, split=split, unit="chunk")
    samples = count_samples(index)
    return {
        split: index,
        "rows": found.rows,
        "missing": found.missing,
        # Rows whose file is there but was left out: unreadable, skipped under --skip-bad.
        "skipped": max(0, found.rows - found.missing - samples),
        "samples": samples,
    }
