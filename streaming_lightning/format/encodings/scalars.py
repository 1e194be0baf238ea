"""Fixed-size numeric encodings: ``int`` (Python int as int64) and the numpy scalar family."""

from __future__ import annotations

import numbers
import struct
from typing import Any

import numpy as np

from streaming_lightning.errors import EncodingError
from streaming_lightning.format.encodings.base import Coder

_INT64 = struct.Struct("<q")


class IntCoder(Coder):
    """``int``: an int64; decodes to a Python ``int``."""

    size = 8
    accepts = (numbers.Integral,)
    struct_format = "<q"

    def encode(self, obj: Any) -> bytes:
        if type(obj) is int and -(1 << 63) <= obj < 1 << 63:
            return _INT64.pack(obj)
        self._check_type(obj, "int")
        try:
            return _INT64.pack(int(obj))
        except struct.error as err:
            raise EncodingError(f"Encoding 'int' stores int64; {obj} does not fit.") from err

    def decode(self, data: bytes) -> int:
        if len(data) != 8:
            raise EncodingError(f"Encoding 'int' needs 8 bytes, got {len(data)}.")
        return int(_INT64.unpack(data)[0])

    def decode_batch(self, rows: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(rows).view("<i8").reshape(-1)

    def decode_rows(self, rows: np.ndarray) -> list[int]:
        return rows.view("<i8").reshape(-1).tolist()  # type: ignore[no-any-return]


class ScalarCoder(Coder):
    """``uint8`` ... ``float64``: a numpy scalar of that dtype; decodes to the numpy scalar."""

    accepts = (numbers.Number, np.generic)

    def __init__(self, dtype: str) -> None:
        self.name = dtype
        self.dtype = np.dtype(dtype).newbyteorder("<")
        self.size = self.dtype.itemsize

    def encode(self, obj: Any) -> bytes:
        self._check_type(obj, self.name)
        try:
            return np.array(obj, dtype=self.dtype).tobytes()
        except (OverflowError, ValueError, TypeError) as err:
            raise EncodingError(
                f"Value {obj!r} does not fit encoding {self.name!r}: {err}"
            ) from err

    def decode(self, data: bytes) -> Any:
        if len(data) != self.size:
            raise EncodingError(f"Encoding {self.name!r} needs {self.size} bytes, got {len(data)}.")
        return np.frombuffer(data, self.dtype)[0]

    def decode_batch(self, rows: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(rows).view(self.dtype).reshape(-1)

    def decode_rows(self, rows: np.ndarray) -> list[Any]:
        return list(rows.view(self.dtype).reshape(-1))


SCALAR_DTYPES = (
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "int8",
    "int16",
    "int32",
    "int64",
    "float16",
    "float32",
    "float64",
)
