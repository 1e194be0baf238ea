"""Parquet files → MDS, one conversion task per file.

``--in`` is a parquet file or a directory searched recursively for ``*.parquet`` (sorted
paths: the sample order is the files' order, then each file's row order, whatever
``--workers``). Columns and their MDS encodings come from the Arrow schema (see
:mod:`streaming_lightning.convert.arrow_columns`); ``--columns NAME=ENCODING,...`` sets or
overrides some (``json`` for structs and maps, ``str`` for dates cast in the source...), and
``--select`` keeps only some. Every file must have the first file's schema: a file that
differs stops the conversion before any is written, naming both. Nulls have no MDS
representation: a null value stops the conversion naming the file, row and column.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from functools import partial
from typing import Any

from recipes.common.convert import WriteOptions, convert_split
from streaming_lightning.convert.arrow_columns import arrow_encoding, value_converter
from streaming_lightning.errors import ConfigError, EncodingError
from streaming_lightning.format.encodings import get_coder

#: Rows read from a file at once (bounded memory whatever the file's size).
BATCH_ROWS = 4096


def find_files(raw: str) -> list[str]:
    """The parquet files of ``--in``, in order."""
    if os.path.isfile(raw):
        return [raw]
    if not os.path.isdir(raw):
        raise ConfigError(f"No file or folder {raw}: --in must be a parquet file or a folder.")
    found = [
        os.path.join(folder, name)
        for folder, _, names in os.walk(raw)
        for name in names
        if name.endswith(".parquet") and not name.startswith((".", "_"))
    ]
    if not found:
        raise ConfigError(f"No *.parquet files under {raw}.")
    return sorted(found)


def add_columns_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """The ``--columns`` flag the generic converters share (read with :func:`parse_columns`)."""
    parser.add_argument("--columns", default=None, help=help)


def parse_columns(text: str | None) -> dict[str, str]:
    """``--columns a=json,b=str`` → {"a": "json", "b": "str"}, each encoding checked."""
    columns: dict[str, str] = {}
    for item in filter(None, (text or "").split(",")):
        name, sep, encoding = item.partition("=")
        if not sep or not name or not encoding:
            raise ConfigError(f"--columns takes NAME=ENCODING pairs, got {item!r}.")
        get_coder(encoding)
        columns[name.strip()] = encoding.strip()
    return columns


def plan_columns(
    files: list[str], overrides: dict[str, str], select: list[str] | None
) -> dict[str, str]:
    """The MDS columns for these files (checked against every file's schema)."""
    import pyarrow
    import pyarrow.parquet as pq

    def schema_of(path: str) -> Any:
        try:
            return pq.read_schema(path)
        except (pyarrow.ArrowException, OSError) as err:
            raise ConfigError(f"{path}: not a readable parquet file ({err}).") from None

    first = schema_of(files[0])
    for path in files[1:]:
        schema = schema_of(path)
        if not schema.remove_metadata().equals(first.remove_metadata()):
            raise ConfigError(
                f"{path} has another schema than {files[0]}: every file of a dataset must have "
                f"the same columns and types.\n  {files[0]}: {first.to_string(False)}\n  "
                f"{path}: {schema.to_string(False)}"
            )
    names = select or first.names
    unknown = [n for n in [*names, *overrides] if n not in first.names]
    if unknown:
        raise ConfigError(f"{files[0]} has no column {unknown}; it has {first.names}.")
    columns = {}
    for name in names:
        encoding = overrides.get(name) or arrow_encoding(first.field(name).type)
        if encoding is None:
            raise EncodingError(
                f"{files[0]}: column {name!r} has Arrow type {first.field(name).type}, which "
                f"has no MDS encoding. Give it one with --columns {name}=ENCODING (json for "
                "structs, maps and lists of strings), or leave it out with --select."
            )
        columns[name] = encoding
    return columns


def encode_file(path: str, columns: dict[str, str]) -> Iterator[dict[str, Any]]:
    """The samples of one parquet file, in row order (runs in a worker process)."""
    import pyarrow.parquet as pq

    converters = {name: value_converter(encoding) for name, encoding in columns.items()}
    row = 0
    with pq.ParquetFile(path) as file:
        for batch in file.iter_batches(batch_size=BATCH_ROWS, columns=list(columns)):
            for record in batch.to_pylist():
                for name, convert in converters.items():
                    value = record[name]
                    if value is None:
                        raise ConfigError(
                            f"{path}: row {row}, column {name!r} is null; MDS stores no nulls. "
                            "Fill or drop them first."
                        )
                    record[name] = convert(value)
                yield record
                row += 1


def convert(
    raw: str,
    options: WriteOptions,
    columns: dict[str, str] | None = None,
    select: list[str] | None = None,
    split: str | None = None,
) -> dict[str, Any]:
    """Convert the parquet files of ``raw`` into ``<out>[/<split>]``; returns the report."""
    files = find_files(raw)
    planned = plan_columns(files, columns or {}, select)
    index = convert_split(
        files, partial(encode_file, columns=planned), planned, options, split=split, unit="file"
    )
    return {split or "dataset": index, "files": len(files), "columns": planned}
