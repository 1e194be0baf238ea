"""A ``datasets`` dataset saved with ``save_to_disk`` → MDS, one conversion task per Arrow
file of a split (``data-0000N-of-0000M.arrow``), never touching the hub.

A ``DatasetDict`` converts split by split into ``<out>/<split>`` (``--split`` picks some); a
single ``Dataset`` into ``<out>``. Columns come from the dataset's features through their
Arrow types (:mod:`streaming_lightning.convert.arrow_columns`), with the features Arrow alone
does not explain: ``ClassLabel`` → ``int`` (its names saved to ``<split>/features.json``
with every feature, so labels can be named again), ``Image`` and ``Audio`` → ``bytes`` (the
file as stored, never decoded; a feature that holds only a path reads the file).
``--columns NAME=ENCODING`` sets others (``json`` for nested features).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from recipes.common.convert import WriteOptions, convert_split, shared_workers
from recipes.common.sidecar import put_bytes
from streaming_lightning.convert.arrow_columns import arrow_encoding, value_converter
from streaming_lightning.errors import ConfigError, EncodingError, MissingExtraError
from streaming_lightning.storage.uploader import join_url

#: Features stored as their file's bytes.
FILE_FEATURES = ("Image", "Audio")
BATCH_ROWS = 1024


def _load(path: str) -> Any:
    try:
        import datasets
    except ImportError:
        raise MissingExtraError("convert hf needs datasets: pip install datasets") from None
    if not os.path.isdir(path):
        raise ConfigError(f"No folder {path}: --in must be a dataset saved with save_to_disk.")
    try:
        return datasets.load_from_disk(path)
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: not a dataset saved with save_to_disk ({err}).") from None


def plan_columns(dataset: Any, overrides: dict[str, str], where: str) -> dict[str, str]:
    features = dataset.features
    unknown = [name for name in overrides if name not in features]
    if unknown:
        raise ConfigError(f"{where} has no column {unknown}; it has {list(features)}.")
    schema = features.arrow_schema
    columns = {}
    for name, feature in features.items():
        kind = type(feature).__name__
        encoding = overrides.get(name)
        if encoding is None:
            encoding = "bytes" if kind in FILE_FEATURES else arrow_encoding(schema.field(name).type)
        if encoding is None:
            raise EncodingError(
                f"{where}: column {name!r} ({feature}) has no MDS encoding. Give it one with "
                f"--columns {name}=ENCODING (json for nested features)."
            )
        columns[name] = encoding
    return columns


@dataclass(frozen=True)
class Task:
    """One Arrow file's worth of a split (picklable: it goes to worker processes)."""

    path: str
    split: str | None
    shard: int
    shards: int
    columns: tuple[tuple[str, str], ...]


def _file_bytes(value: Any, where: str) -> bytes:
    """An Image/Audio cell ({"bytes", "path"}) as the file's bytes."""
    if isinstance(value, dict):
        if value.get("bytes") is not None:
            return bytes(value["bytes"])
        if value.get("path"):
            with open(value["path"], "rb") as file:
                return file.read()
    raise ConfigError(f"{where}: an image/audio cell with neither bytes nor a readable path.")


def encode_task(task: Task) -> Iterator[dict[str, Any]]:
    """The samples of one Arrow file of a split, in order (runs in a worker process)."""
    dataset = _load(task.path)
    if task.split is not None:
        dataset = dataset[task.split]
    part = dataset.shard(task.shards, task.shard, contiguous=True).with_format("arrow")
    columns = dict(task.columns)
    files = {n for n, f in dataset.features.items() if type(f).__name__ in FILE_FEATURES}
    converters = {name: value_converter(encoding) for name, encoding in columns.items()}
    row = 0
    for table in part.iter(batch_size=BATCH_ROWS):
        for record in table.select(list(columns)).to_pylist():
            where = f"{task.path} {task.split or ''} row {row}".replace("  ", " ")
            for name, convert in converters.items():
                value = record[name]
                if value is None:
                    raise ConfigError(f"{where}: column {name!r} is null; MDS stores no nulls.")
                record[name] = _file_bytes(value, where) if name in files else convert(value)
            yield record
            row += 1


def _write_features(root: str, dataset: Any) -> None:
    data = (json.dumps(dataset.features.to_dict(), indent=1) + "\n").encode()
    put_bytes(join_url(root, "features.json"), data)


def convert(
    raw: str,
    options: WriteOptions,
    columns: dict[str, str] | None = None,
    splits: list[str] | None = None,
) -> dict[str, Any]:
    loaded = _load(raw)
    is_dict = hasattr(loaded, "keys") and not hasattr(loaded, "features")
    names: list[str | None] = list(loaded.keys()) if is_dict else [None]
    if splits:
        if not is_dict:
            raise ConfigError(f"{raw} is a single Dataset: it has no splits to pick.")
        missing = [s for s in splits if s not in names]
        if missing:
            raise ConfigError(f"{raw} has no split {missing}; it has {names}.")
        names = list(splits)
    report: dict[str, Any] = {}
    with shared_workers(options.workers):
        for split in names:
            dataset = loaded[split] if split is not None else loaded
            where = f"{raw}" + (f" split {split!r}" if split else "")
            planned = plan_columns(dataset, columns or {}, where)
            shards = max(1, len(dataset.cache_files))
            tasks = [Task(raw, split, i, shards, tuple(planned.items())) for i in range(shards)]
            index = convert_split(tasks, encode_task, planned, options, split=split, unit="file")
            _write_features(join_url(options.out, split) if split else options.out, dataset)
            report[split or "dataset"] = index
            report[f"{split or 'dataset'}_rows"] = len(dataset)
    return report
