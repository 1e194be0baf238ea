"""Spark DataFrame → MDS: each partition is written by the executor that holds it, the driver
merges the parts (see :mod:`.parts` for how retried and speculative tasks stay out of the
merged index).

Needs the ``spark`` extra (pyspark, pandas, pyarrow): partitions reach Python as Arrow batches
(``mapInPandas``), which is also what ``udf_iterable`` receives, as in mosaicml-streaming.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from streaming_lightning.convert.arrow_columns import value_converter
from streaming_lightning.convert.parts import (
    ConversionResult,
    PartResult,
    WriteSettings,
    attempt_name,
    check_output,
    commit,
    write_part,
)
from streaming_lightning.errors import ConfigError, EncodingError, MissingExtraError

UdfIterable = Callable[..., Iterable[dict[str, Any]]]

#: Spark's numeric types and the MDS scalar encoding (and numpy dtype) each one becomes.
_NUMBERS = {
    "ByteType": "int8",
    "ShortType": "int16",
    "IntegerType": "int32",
    "LongType": "int64",
    "FloatType": "float32",
    "DoubleType": "float64",
}
_OTHERS = {"StringType": "str", "BinaryType": "bytes", "DecimalType": "str_decimal"}


def infer_columns(schema: Any) -> dict[str, str]:
    """MDS encodings for a Spark schema: strings, binary (images too: their bytes), integral
    and floating numbers, decimals (as text, exactly), and arrays of numbers
    (``ndarray:DTYPE``, any length). Anything else is refused naming the column and its type,
    with the way out: cast it, or give ``columns=`` (e.g. ``json`` for maps and structs)."""
    columns = {}
    for spark_field in schema.fields:
        kind = type(spark_field.dataType).__name__
        encoding = _NUMBERS.get(kind) or _OTHERS.get(kind)
        if kind == "ArrayType":
            element = type(spark_field.dataType.elementType).__name__
            if element in _NUMBERS:
                encoding = f"ndarray:{_NUMBERS[element]}"
        if encoding is None:
            raise EncodingError(
                f"Column {spark_field.name!r} has Spark type {spark_field.dataType.simpleString()}"
                ", which has no MDS encoding. Cast it (to string, binary, a number or an array "
                "of numbers), or pass columns= with an encoding for it (e.g. 'json')."
            )
        columns[spark_field.name] = encoding
    return columns


def _samples(
    batches: Iterator[Any],
    columns: dict[str, str],
    udf_iterable: UdfIterable | None,
    udf_kwargs: dict[str, Any],
    partition: int,
) -> Iterator[dict[str, Any]]:
    if udf_iterable is not None:
        for batch in batches:
            yield from udf_iterable(batch, **udf_kwargs)
        return
    converters = {name: value_converter(encoding) for name, encoding in columns.items()}
    nullable = {name for name, enc in columns.items() if not enc.startswith("float")}
    for batch in batches:
        for record in batch[list(columns)].to_dict("records"):
            for name in nullable:
                value = record[name]
                if value is None or (isinstance(value, float) and np.isnan(value)):
                    raise ConfigError(
                        f"Partition {partition}: column {name!r} is null in a row; MDS stores "
                        "no nulls. Filter or fill them (df.na.fill / df.dropna) first."
                    )
            yield {name: convert(record[name]) for name, convert in converters.items()}


def _task(
    out: str,
    settings: WriteSettings,
    udf_iterable: UdfIterable | None,
    udf_kwargs: dict[str, Any],
) -> Callable[[Iterator[Any]], Iterator[Any]]:
    """The function every Spark task runs over its partition (pickled to the executors)."""

    def run(batches: Iterator[Any]) -> Iterator[Any]:
        import pandas as pd
        from pyspark import TaskContext

        context = TaskContext.get()
        assert context is not None, "runs only inside a Spark task"
        partition = context.partitionId()
        samples = _samples(batches, settings.columns, udf_iterable, udf_kwargs, partition)
        result = write_part(
            samples, out, partition, attempt_name(context.attemptNumber()), settings
        )
        yield pd.DataFrame({"result": [result.to_json()]})

    return run


def _collect_with_progress(written: Any, partitions: int) -> list[Any]:
    """``collect()`` in a thread while a tqdm bar follows the job's finished tasks (Spark's
    status tracker): the partitions still run all at once."""
    import threading

    from tqdm import tqdm

    tracker = written.sparkSession.sparkContext.statusTracker()
    rows: list[Any] = []
    failure: list[BaseException] = []

    def collect() -> None:
        try:
            rows.extend(written.collect())
        except BaseException as err:  # re-raised in the caller's thread
            failure.append(err)

    thread = threading.Thread(target=collect, name="dataframe-to-mds", daemon=True)
    thread.start()
    with tqdm(total=partitions, desc="Partitions written", unit=" part") as bar:
        while thread.is_alive():
            thread.join(0.5)
            done = sum(
                info.numCompletedTasks
                for stage in tracker.getActiveStageIds()
                if (info := tracker.getStageInfo(stage)) is not None
            )
            bar.update(max(0, min(done, partitions) - bar.n))
        bar.update(partitions - bar.n if not failure else 0)
    if failure:
        raise failure[0]
    return rows


def dataframe_to_mds(
    dataframe: Any,
    out: str | None = None,
    *,
    columns: dict[str, str] | None = None,
    compression: str | None = None,
    hashes: list[str] | None = None,
    size_limit: int | str | None = 1 << 26,
    udf_iterable: UdfIterable | None = None,
    udf_kwargs: dict[str, Any] | None = None,
    merge_index: bool = True,
    progress_bar: bool = False,
    exist_ok: bool = False,
    retry: int = 2,
    mds_kwargs: dict[str, Any] | None = None,
) -> ConversionResult:
    """Write a Spark DataFrame as one MDS dataset at ``out`` (a directory every executor can
    reach, or a remote URL): each partition a sub-dataset under ``out/parts/``, merged into
    ``out/index.json``. Samples keep the DataFrame's partition order, and each partition's
    row order.

    ``columns`` (name → MDS encoding) defaults to :func:`infer_columns` of the schema; given,
    exactly those columns are written. ``udf_iterable(pandas_batch, **udf_kwargs)`` turns
    each Arrow batch of a partition into samples (then ``columns`` is required).
    ``mds_kwargs`` takes mosaicml-streaming's form (``out``, ``columns``, ``compression``,
    ``hashes``, ``size_limit``, ``progress_bar``, ``keep_local``) for a drop-in switch.

    Returns :class:`~.parts.ConversionResult`, which unpacks as ``(out, fail_count)``.
    """
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise MissingExtraError(
            "dataframe_to_mds needs pyspark: pip install 'streaming-lightning[spark]'."
        ) from None
    options = dict(mds_kwargs or {})
    options.pop("keep_local", None)  # parts are written where they belong; nothing to keep
    out = out or options.pop("out", None)
    if not out:
        raise ConfigError("dataframe_to_mds needs out= (a directory or a remote URL).")
    out = out if "://" in out else os.path.abspath(out)
    columns = columns or options.pop("columns", None)
    if columns is None:
        if udf_iterable is not None:
            raise ConfigError(
                "With udf_iterable, pass columns=: the samples it yields are not the "
                "DataFrame's rows, so their encodings cannot be inferred from its schema."
            )
        columns = infer_columns(dataframe.schema)
    elif udf_iterable is None:
        missing = [name for name in columns if name not in dataframe.columns]
        if missing:
            raise ConfigError(
                f"columns= names {missing}, which the DataFrame does not have "
                f"(it has {dataframe.columns})."
            )
        dataframe = dataframe.select(*columns)
    settings = WriteSettings(
        columns=dict(columns),
        compression=options.pop("compression", compression),
        hashes=list(options.pop("hashes", hashes) or []),
        size_limit=options.pop("size_limit", size_limit),
        retry=retry,
    )
    progress_bar = bool(options.pop("progress_bar", progress_bar))
    if options:
        raise ConfigError(f"dataframe_to_mds: unknown mds_kwargs {sorted(options)}.")

    started = time.monotonic()
    check_output(out, exist_ok)
    task = _task(out, settings, udf_iterable, dict(udf_kwargs or {}))
    written = dataframe.mapInPandas(task, "result string")
    if progress_bar:
        rows = _collect_with_progress(written, dataframe.rdd.getNumPartitions())
    else:
        rows = written.collect()  # every partition at once (toLocalIterator runs one by one)
    results = [PartResult.from_json(row["result"]) for row in rows]
    return commit(out, results, merge=merge_index, started=started)


__all__ = ["dataframe_to_mds", "infer_columns"]
