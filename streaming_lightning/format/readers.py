"""Registry from an index entry's ``format`` to the reader class that reads it."""

from __future__ import annotations

from typing import Any

from streaming_lightning.errors import IndexFormatError
from streaming_lightning.format.jsonl.reader import JSONReader
from streaming_lightning.format.mds.reader import MDSReader
from streaming_lightning.format.reader import ShardReader
from streaming_lightning.format.xsv.reader import CSVReader, TSVReader, XSVReader

READERS: dict[str, type[ShardReader]] = {
    "mds": MDSReader,
    "csv": CSVReader,
    "tsv": TSVReader,
    "xsv": XSVReader,
    "json": JSONReader,
}


def reader_class(fmt: str, *, where: str = "index.json") -> type[ShardReader]:
    """The reader class for format ``fmt``; a clear error for unknown formats."""
    cls = READERS.get(fmt)
    if cls is None:
        raise IndexFormatError(
            f"{where}: unknown shard format {fmt!r}; expected one of {sorted(READERS)}."
        )
    return cls


def reader_from_json(
    dirname: str, split: str | None, spec: dict[str, Any], *, allow_unsafe_types: bool = False
) -> ShardReader:
    """Build the reader for one (already validated) index entry."""
    return reader_class(spec["format"])(dirname, split, spec, allow_unsafe_types=allow_unsafe_types)
