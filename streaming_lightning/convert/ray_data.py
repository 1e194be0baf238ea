"""Ray Data → MDS: a Datasink whose write tasks each write one part (see :mod:`.parts` for why
a retried task never puts its partial output in the merged index), merged by the driver when
the write completes.

Needs the ``ray`` extra. To transform samples first, use Ray's own ``map``/``map_batches``/
``flat_map`` on the Dataset: that is the engine's idiom, and it runs in the same tasks.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

from streaming_lightning.convert.arrow_columns import infer_arrow_columns, value_converter
from streaming_lightning.convert.parts import (
    ConversionResult,
    PartResult,
    WriteSettings,
    attempt_name,
    check_output,
    commit,
    write_part,
)
from streaming_lightning.errors import ConfigError, MissingExtraError

try:  # the Datasink base class; without ray, write_mds says which extra to install
    from ray.data import Datasink as _DatasinkBase

    _HAVE_RAY = True
except ImportError:  # pragma: no cover - exercised where the extra is missing
    _DatasinkBase = object  # type: ignore[assignment,misc]
    _HAVE_RAY = False


class MDSDatasink(_DatasinkBase):  # type: ignore[misc,valid-type]
    """Write a Ray Dataset as MDS parts under ``out`` and merge them on completion."""

    def __init__(self, out: str, settings: WriteSettings, merge_index: bool = True) -> None:
        self.out = out
        self.settings = settings
        self.merge_index = merge_index
        self.result: ConversionResult | None = None
        self._started = time.monotonic()

    def rows(self, blocks: Iterable[Any]) -> Iterator[dict[str, Any]]:
        """The samples of a write task's blocks, as the columns' coders take them."""
        from ray.data.block import BlockAccessor

        converters = {name: value_converter(e) for name, e in self.settings.columns.items()}
        for block in blocks:
            row: dict[str, Any]
            for row in BlockAccessor.for_block(block).iter_rows(public_row_format=True):
                yield {name: convert(row[name]) for name, convert in converters.items()}

    def write(self, blocks: Iterable[Any], ctx: Any) -> str:
        # Ray does not expose a task's attempt number: the name's random part tells attempts
        # apart, and only the attempt whose return value reaches the driver is merged.
        result = write_part(
            self.rows(blocks), self.out, ctx.task_idx, attempt_name(0), self.settings
        )
        return result.to_json()

    def on_write_complete(self, write_result: Any) -> None:
        results = [PartResult.from_json(text) for text in write_result.write_returns]
        self.result = commit(self.out, results, merge=self.merge_index, started=self._started)


def write_mds(
    dataset: Any,
    out: str,
    *,
    columns: dict[str, str] | None = None,
    compression: str | None = None,
    hashes: list[str] | None = None,
    size_limit: int | str | None = 1 << 26,
    merge_index: bool = True,
    exist_ok: bool = False,
    retry: int = 2,
    max_task_retries: int = 3,
    concurrency: int | None = None,
) -> ConversionResult:
    """Write a Ray Dataset as one MDS dataset at ``out`` (a directory every worker can reach,
    or a remote URL): one part per write task under ``out/parts/``, merged into
    ``out/index.json`` in write-task order (the Dataset's block order when Ray's
    ``DataContext.execution_options.preserve_order`` is set).

    ``columns`` defaults to :func:`infer_arrow_columns` of the Dataset's schema; given,
    exactly those columns are written. A task that raises or whose worker dies is retried up
    to ``max_task_retries`` times. Returns :class:`~.parts.ConversionResult`.
    """
    if not _HAVE_RAY:
        raise MissingExtraError("write_mds needs Ray Data: pip install 'streaming-lightning[ray]'.")
    out = out if "://" in out else os.path.abspath(out)
    if columns is None:
        schema = dataset.schema()
        if schema is None:
            raise ConfigError("The Ray Dataset has no schema (is it empty?): pass columns=.")
        columns = infer_arrow_columns(schema.base_schema)
    else:
        missing = [name for name in columns if name not in dataset.columns()]
        if missing:
            raise ConfigError(
                f"columns= names {missing}, which the Dataset does not have "
                f"(it has {dataset.columns()})."
            )
    settings = WriteSettings(
        columns=dict(columns),
        compression=compression,
        hashes=list(hashes or []),
        size_limit=size_limit,
        retry=retry,
    )
    check_output(out, exist_ok)
    sink = MDSDatasink(out, settings, merge_index=merge_index)
    dataset.write_datasink(
        sink,
        ray_remote_args={"max_retries": max_task_retries, "retry_exceptions": True},
        concurrency=concurrency,
    )
    if sink.result is None:  # pragma: no cover - Ray calls on_write_complete before returning
        raise ConfigError("Ray finished the write without reporting its parts.")
    return sink.result
