"""``ndarray[:DTYPE[:D0,D1,...]]``: numpy arrays, with the dtype and/or shape either fixed by the
column or stored per value.

Layout per value (what is fixed by the column is omitted)::

    [dtype code: 1 byte] [ndim << 2 | shape-dtype code: 1 byte] [shape] [arr.tobytes()]

The shape is stored in the smallest unsigned integer type that holds its largest dimension.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from streaming_lightning.errors import EncodingError
from streaming_lightning.format.encodings.base import Coder

VALUE_DTYPE_CODES: dict[str, int] = {
    "uint8": 8,
    "int8": 9,
    "uint16": 16,
    "int16": 17,
    "float16": 18,
    "uint32": 32,
    "int32": 33,
    "float32": 34,
    "uint64": 64,
    "int64": 65,
    "float64": 66,
}
_CODE_TO_VALUE_DTYPE = {code: name for name, code in VALUE_DTYPE_CODES.items()}
_DTYPE_CODES = {np.dtype(name).newbyteorder("<"): code for name, code in VALUE_DTYPE_CODES.items()}
_SHAPE_DTYPES = ("uint8", "uint16", "uint32", "uint64")


def _shape_dtype_code(shape: tuple[int, ...]) -> int:
    largest = max(shape)
    for code in range(3):
        if largest < 1 << (8 << code):
            return code
    return 3


class NDArrayCoder(Coder):
    """Encoding for numpy arrays; see the module docstring for the byte layout."""

    accepts = (np.ndarray,)

    def __init__(self, config: str | None = None) -> None:
        dtype: str | None = None
        shape: tuple[int, ...] | None = None
        parts = config.split(":") if config else []
        if len(parts) > 2:
            raise EncodingError(f"Encoding 'ndarray:{config}' has too many parts.")
        if parts:
            dtype = parts[0]
            if dtype not in VALUE_DTYPE_CODES:
                raise EncodingError(
                    f"Encoding 'ndarray:{config}': unsupported dtype {dtype!r}; use one of "
                    f"{', '.join(VALUE_DTYPE_CODES)}."
                )
        if len(parts) == 2:
            try:
                shape = tuple(int(dim) for dim in parts[1].split(","))
            except ValueError as err:
                raise EncodingError(
                    f"Encoding 'ndarray:{config}': bad shape {parts[1]!r}."
                ) from err
            if not shape or min(shape) < 1:
                raise EncodingError(f"Encoding 'ndarray:{config}': dimensions must be >= 1.")
        self.name = f"ndarray:{config}" if config else "ndarray"
        self.dtype = dtype
        self.shape = shape
        self._np_dtype = np.dtype(dtype).newbyteorder("<") if dtype else None
        if self._np_dtype is not None and shape is not None:
            self.size = math.prod(shape) * self._np_dtype.itemsize
            if self.size >= 1 << 32:  # (an index.json may say anything)
                raise EncodingError(
                    f"Encoding {self.name!r:.80}: {self.size} bytes per value cannot fit in a "
                    "shard (under 4 GiB)."
                )

    def encode(self, obj: Any) -> bytes:
        # Hot path (one call per sample per column): a column with fixed dtype and shape whose
        # value already matches needs nothing but the raw bytes.
        if (
            type(obj) is np.ndarray
            and self.size is not None
            and obj.dtype == self._np_dtype
            and obj.shape == self.shape
        ):
            return obj.tobytes()
        self._check_type(obj, self.name)
        arr: np.ndarray = obj
        parts: list[bytes] = []
        code = _DTYPE_CODES.get(arr.dtype.newbyteorder("<"))
        if code is None:
            raise EncodingError(f"Encoding {self.name!r}: unsupported array dtype {arr.dtype}.")
        if self._np_dtype is None:
            parts.append(bytes((code,)))
        elif arr.dtype.newbyteorder("<") != self._np_dtype:
            raise EncodingError(
                f"Encoding {self.name!r}: expected dtype {self.dtype}, got {arr.dtype.name}."
            )
        if arr.size == 0:
            raise EncodingError(f"Encoding {self.name!r}: cannot store an array with 0 elements.")
        if self.shape is None:
            if arr.ndim == 0:
                raise EncodingError(
                    f"Encoding {self.name!r}: got a 0-d array; use a scalar encoding."
                )
            if arr.ndim >= 64:
                raise EncodingError(f"Encoding {self.name!r}: at most 63 axes, got {arr.ndim}.")
            shape_code = _shape_dtype_code(arr.shape)
            parts.append(bytes(((arr.ndim << 2) | shape_code,)))
            parts.append(np.asarray(arr.shape, dtype=_SHAPE_DTYPES[shape_code]).tobytes())
        elif arr.shape != self.shape:
            raise EncodingError(
                f"Encoding {self.name!r}: expected shape {self.shape}, got {arr.shape}."
            )
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        parts.append(arr.tobytes())
        return b"".join(parts)

    def decode_batch(self, rows: np.ndarray) -> np.ndarray | None:
        if self.size is None or self._np_dtype is None or self.shape is None:
            return None
        return np.ascontiguousarray(rows).view(self._np_dtype).reshape(len(rows), *self.shape)

    def decode_rows(self, rows: np.ndarray) -> Sequence[Any]:
        # One array for the whole batch; each sample gets a view of its row (the batch stays
        # alive while any of its samples does).
        batch = self.decode_batch(rows)
        return super().decode_rows(rows) if batch is None else list(batch)

    def decode(self, data: bytes) -> np.ndarray:
        if self.size is not None:  # fixed dtype and shape: the hot, header-free case
            if len(data) != self.size:
                raise EncodingError(
                    f"Encoding {self.name!r}: stored value is corrupt ({len(data)} bytes, "
                    f"expected {self.size})."
                )
            return np.frombuffer(data, self._np_dtype).reshape(self.shape)  # type: ignore[arg-type]
        pos = 0
        try:
            if self._np_dtype is not None:
                dtype = self._np_dtype
            else:
                dtype = np.dtype(_CODE_TO_VALUE_DTYPE[data[0]]).newbyteorder("<")
                pos = 1
            if self.shape is not None:
                shape: tuple[int, ...] = self.shape
            else:
                header = data[pos]
                pos += 1
                ndim, code = header >> 2, header & 3
                width = 1 << code
                shape = tuple(int(d) for d in np.frombuffer(data, _SHAPE_DTYPES[code], ndim, pos))
                pos += ndim * width
            count = math.prod(shape)  # exact: numpy's product of forged dims would wrap
            if len(data) - pos != count * dtype.itemsize:
                raise ValueError(f"{len(data) - pos} value bytes for shape {shape} of {dtype.name}")
            return np.frombuffer(data, dtype, count, pos).reshape(shape)
        except (IndexError, KeyError, ValueError) as err:
            raise EncodingError(
                f"Encoding {self.name!r}: stored value is corrupt ({err})."
            ) from err
