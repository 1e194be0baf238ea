"""Arrow types ↔ MDS encodings: what every converter from a columnar source (Ray Data,
parquet files, Hugging Face datasets) infers its columns with, and how a value read from
Arrow becomes what the column's coder takes.

Arrow has more types than MDS has encodings: booleans, dates, timestamps, maps, structs and
lists of anything but numbers have none. Those are refused naming the column and its type,
with the way out (cast it, or choose an encoding such as ``json``), never stored lossily.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from streaming_lightning.errors import EncodingError


def arrow_encoding(arrow_type: Any) -> str | None:
    """The MDS encoding of an Arrow type, or None where there is none."""
    import pyarrow as pa
    import pyarrow.types as pat

    if pat.is_string(arrow_type) or pat.is_large_string(arrow_type):
        return "str"
    if pat.is_binary(arrow_type) or pat.is_large_binary(arrow_type):
        return "bytes"
    if pat.is_boolean(arrow_type):
        return None
    if pat.is_integer(arrow_type) or pat.is_floating(arrow_type):
        return str(np.dtype(arrow_type.to_pandas_dtype()))
    if pat.is_decimal(arrow_type):
        return "str_decimal"
    if (
        pat.is_list(arrow_type)
        or pat.is_large_list(arrow_type)
        or pat.is_fixed_size_list(arrow_type)
    ):
        element = arrow_encoding(arrow_type.value_type)
        if element is None or element in ("str", "bytes", "str_decimal"):
            return None
        return None if element.startswith("ndarray") else f"ndarray:{element}"
    if isinstance(arrow_type, pa.ExtensionType):  # Ray's tensor types: a list of numbers
        return arrow_encoding(arrow_type.storage_type)
    return None


def infer_arrow_columns(schema: Any, source: str = "") -> dict[str, str]:
    """MDS encodings for an Arrow schema: strings, binary, integers, floats, decimals (as
    text), lists and tensors of numbers (``ndarray:DTYPE``). Anything else is refused naming
    the column, its type and ``source`` (the file or dataset it came from)."""
    columns = {}
    where = f"{source}: " if source else ""
    for name, arrow_type in zip(schema.names, schema.types):
        encoding = arrow_encoding(arrow_type)
        if encoding is None:
            raise EncodingError(
                f"{where}column {name!r} has Arrow type {arrow_type}, which has no MDS "
                "encoding. Cast it (to string, binary, a number or an array of numbers), or "
                "give an encoding for it (columns=, or --columns NAME=ENCODING; e.g. 'json')."
            )
        columns[name] = encoding
    return columns


def value_converter(encoding: str) -> Callable[[Any], Any]:
    """How a value read from Arrow (``to_pylist``, a pandas cell, a Ray row) becomes what the
    column's coder takes: arrays of numbers become numpy arrays of the column's dtype; other
    values pass as they are."""
    if encoding.startswith("ndarray"):
        _, _, config = encoding.partition(":")
        dtype = np.dtype(config.split(":")[0]) if config else None
        return lambda value: np.asarray(value, dtype=dtype)
    return lambda value: value
