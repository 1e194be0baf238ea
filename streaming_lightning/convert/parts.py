"""Conversion on a distributed engine, whichever it is: one MDS sub-dataset per task attempt,
merged by the driver from the attempts the engine reports as successful.

Why attempts and not partitions name the directories: Spark and Ray retry a failed task (and
Spark may run a speculative copy of a slow one), and an attempt killed half-way has already
uploaded some shards. If every attempt of a partition wrote to ``out/<partition>/``, a retry
would mix its shards with the dead attempt's, and two successful attempts would both be merged.
Here each attempt writes to its own ``out/parts/<partition>.<attempt>/`` (its ``index.json``
last, so a part with an index is complete), and only the parts whose results reached the
driver are merged: the merged index never lists a partition twice or a half-written shard.
Parts of attempts that did not succeed are removed from a local output; a remote one keeps
them (listed in a warning, never read), since the storage layer does not delete objects.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from streaming_lightning.errors import ConfigError, StreamingError
from streaming_lightning.format import MDSWriter
from streaming_lightning.format.encodings import get_coder
from streaming_lightning.format.writer import OutputExistsError
from streaming_lightning.storage.merge import merge_index
from streaming_lightning.storage.registry import is_remote
from streaming_lightning.storage.transfer import list_objects
from streaming_lightning.storage.uploader import join_url

logger = logging.getLogger(__name__)

#: Subdirectory of the output holding one sub-dataset per task attempt.
PARTS_DIR = "parts"


@dataclass(frozen=True)
class WriteSettings:
    """How every task writes its part (what ``MDSWriter`` takes, minus ``out``)."""

    columns: dict[str, str]
    compression: str | None = None
    hashes: list[str] = field(default_factory=list)
    size_limit: int | str | None = 1 << 26
    retry: int = 2

    def __post_init__(self) -> None:
        if not self.columns:
            raise ConfigError("A conversion needs at least one column.")
        for name, encoding in self.columns.items():
            try:
                get_coder(encoding)
            except StreamingError as err:
                raise ConfigError(f"Column {name!r}: {err}") from None


@dataclass(frozen=True)
class PartResult:
    """What one successful task attempt wrote: reported to the driver by the engine."""

    partition: int
    directory: str  # relative to the output, "/"-separated
    samples: int
    shards: int

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> PartResult:
        return cls(**json.loads(text))


class ConversionResult(tuple):  # type: ignore[type-arg]
    """``(out, fail_count)``, unpacking like mosaicml-streaming's converters' return value,
    with the figures as attributes: ``out``, ``samples``, ``partitions``, ``shards``,
    ``seconds``, ``merged_index`` (its path or URL; None with ``merge_index=False``)."""

    out: str
    samples: int
    partitions: int
    shards: int
    seconds: float
    merged_index: str | None

    def __new__(
        cls,
        out: str,
        *,
        samples: int,
        partitions: int,
        shards: int,
        seconds: float,
        merged_index: str | None,
    ) -> ConversionResult:
        result = super().__new__(cls, (out, 0))
        result.out, result.samples, result.partitions = out, samples, partitions
        result.shards, result.seconds, result.merged_index = shards, seconds, merged_index
        return result

    def __repr__(self) -> str:
        return (
            f"ConversionResult(out={self.out!r}, samples={self.samples}, partitions="
            f"{self.partitions}, shards={self.shards}, seconds={self.seconds:.1f})"
        )


def _join(out: str, relative: str) -> str:
    return join_url(out, relative) if is_remote(out) else os.path.join(out, *relative.split("/"))


def check_output(out: str, exist_ok: bool) -> None:
    """Refuse an output that already holds files (a previous conversion's parts would be
    merged with this one's), unless ``exist_ok``: then its old contents are removed (local)
    or, remotely, the new index simply replaces the old one."""
    if is_remote(out):
        if list_objects(out.rstrip("/") + "/") and not exist_ok:
            raise OutputExistsError(
                f"{out} already holds objects. Choose an empty prefix, or pass exist_ok=True."
            )
        return
    if os.path.isdir(out) and os.listdir(out):
        if not exist_ok:
            raise OutputExistsError(
                f"Output directory {out} is not empty. Choose another, or pass exist_ok=True "
                "to replace its contents."
            )
        shutil.rmtree(out)
    os.makedirs(out, exist_ok=True)


def write_part(
    samples: Iterable[dict[str, Any]],
    out: str,
    partition: int,
    attempt: str,
    settings: WriteSettings,
) -> PartResult:
    """Write one task attempt's samples as a sub-dataset of ``out`` (runs on a worker)."""
    relative = f"{PARTS_DIR}/{partition:05d}.{attempt}"
    count = 0
    with MDSWriter(
        out=_join(out, relative),
        columns=settings.columns,
        compression=settings.compression,
        hashes=list(settings.hashes),
        size_limit=settings.size_limit,
        retry=settings.retry,
        max_workers=1,  # the engine already runs a task per core
    ) as writer:
        for sample in samples:
            try:
                writer.write(sample)
            except StreamingError as err:  # name where in the input, not just which encoding
                raise type(err)(f"Partition {partition}, its sample {count}: {err}") from err
            count += 1
    return PartResult(partition, relative, count, len(writer.shards))


def attempt_name(attempt_number: int) -> str:
    """A directory name no other attempt of the partition can have, even a speculative copy
    started at the same moment."""
    return f"a{attempt_number}-{uuid.uuid4().hex[:8]}"


def commit(
    out: str, results: Sequence[PartResult], *, merge: bool, started: float
) -> ConversionResult:
    """Merge the successful parts (in partition order) into ``out/index.json`` and remove
    the parts of attempts that failed (see the module docstring)."""
    by_partition: dict[int, PartResult] = {}
    for result in results:
        if result.partition in by_partition:
            first = by_partition[result.partition].directory
            raise StreamingError(
                f"Partition {result.partition} reported twice ({first} and {result.directory}); "
                "the engine ran it twice successfully."
            )
        by_partition[result.partition] = result
    ordered = [by_partition[p] for p in sorted(by_partition)]
    written = [r for r in ordered if r.shards]
    index = None
    if merge and written:
        index = merge_index([_join(out, r.directory) for r in written], out)
    elif merge:
        raise ConfigError(f"Nothing to merge in {out}: every partition was empty.")
    _discard_failed_attempts(out, {r.directory.rsplit("/", 1)[-1] for r in ordered})
    return ConversionResult(
        out,
        samples=sum(r.samples for r in ordered),
        partitions=len(ordered),
        shards=sum(r.shards for r in ordered),
        seconds=time.monotonic() - started,
        merged_index=index,
    )


def _discard_failed_attempts(out: str, kept: set[str]) -> None:
    if is_remote(out):
        prefix = join_url(out, PARTS_DIR) + "/"
        orphans = sorted(
            {
                url[len(prefix) :].split("/", 1)[0]
                for url in list_objects(prefix)
                if url.startswith(prefix)
            }
            - kept
        )
        if orphans:
            logger.warning(
                "%d parts under %s are from task attempts that did not succeed; the merged "
                "index does not list them (delete them to save space): %s",
                len(orphans),
                prefix,
                ", ".join(orphans[:20]),
            )
        return
    parts = os.path.join(out, PARTS_DIR)
    if not os.path.isdir(parts):
        return
    for name in os.listdir(parts):
        if name not in kept:
            shutil.rmtree(os.path.join(parts, name), ignore_errors=True)
