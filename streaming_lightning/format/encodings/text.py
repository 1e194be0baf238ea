"""Byte and text encodings: ``bytes``, ``str``, ``str_int``, ``str_float``, ``str_decimal``,
``json`` and ``pkl`` (the only unsafe one)."""

from __future__ import annotations

import json
import numbers
import pickle
from decimal import Decimal
from typing import Any

import numpy as np

from streaming_lightning.errors import EncodingError
from streaming_lightning.format.encodings.base import Coder


class BytesCoder(Coder):
    """``bytes``: stored as is."""

    accepts = (bytes, bytearray, memoryview)
    identity = True

    def encode(self, obj: Any) -> bytes:
        self._check_type(obj, "bytes")
        return bytes(obj)

    def decode(self, data: bytes) -> bytes:
        return bytes(data)


class StrCoder(Coder):
    """``str``: UTF-8."""

    accepts = (str,)

    def encode(self, obj: Any) -> bytes:
        self._check_type(obj, "str")
        return obj.encode("utf-8")

    def decode(self, data: bytes) -> str:
        return _utf8(data, "str")


def _utf8(data: bytes, encoding: str) -> str:
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError as err:
        raise EncodingError(f"Encoding {encoding!r}: stored bytes are not UTF-8 ({err}).") from err


class StrIntCoder(Coder):
    """``str_int``: an int of any size as its decimal digits."""

    accepts = (numbers.Integral,)

    def encode(self, obj: Any) -> bytes:
        self._check_type(obj, "str_int")
        return str(int(obj)).encode("utf-8")

    def decode(self, data: bytes) -> int:
        try:
            return int(_utf8(data, "str_int"))
        except ValueError as err:
            raise EncodingError(f"Encoding 'str_int': {bytes(data)[:40]!r} is not an int.") from err


class StrFloatCoder(Coder):
    """``str_float``: a float as ``str(value)``, which round-trips exactly."""

    accepts = (float,)

    def encode(self, obj: Any) -> bytes:
        self._check_type(obj, "str_float")
        return str(obj).encode("utf-8")

    def decode(self, data: bytes) -> float:
        try:
            return float(_utf8(data, "str_float"))
        except ValueError as err:
            raise EncodingError(f"Encoding 'str_float': {bytes(data)[:40]!r} is no float.") from err


class StrDecimalCoder(Coder):
    """``str_decimal``: a :class:`decimal.Decimal` at full precision."""

    accepts = (Decimal,)

    def encode(self, obj: Any) -> bytes:
        self._check_type(obj, "str_decimal")
        return str(obj).encode("utf-8")

    def decode(self, data: bytes) -> Decimal:
        try:
            return Decimal(_utf8(data, "str_decimal"))
        except ArithmeticError as err:
            raise EncodingError(
                f"Encoding 'str_decimal': {bytes(data)[:40]!r} is no decimal."
            ) from err


class JSONCoder(Coder):
    """``json``: any JSON-serialisable value (numpy arrays become lists)."""

    def encode(self, obj: Any) -> bytes:
        if isinstance(obj, np.ndarray):
            obj = obj.tolist()
        try:
            return json.dumps(obj).encode("utf-8")
        except (TypeError, ValueError) as err:
            raise EncodingError(f"Encoding 'json': value is not JSON-serialisable: {err}") from err

    def decode(self, data: bytes) -> Any:
        text = _utf8(data, "json")
        try:
            return json.loads(text)
        except (ValueError, RecursionError) as err:  # also: too deep, ints past 4300 digits
            raise EncodingError(
                f"Encoding 'json': stored bytes are not valid JSON ({err})."
            ) from err


class PickleCoder(Coder):
    """``pkl``: any picklable value. Unpickling runs arbitrary code, hence ``safe = False``."""

    safe = False

    def encode(self, obj: Any) -> bytes:
        try:
            return pickle.dumps(obj)
        except (pickle.PicklingError, TypeError, AttributeError) as err:
            raise EncodingError(f"Encoding 'pkl': value cannot be pickled: {err}") from err

    def decode(self, data: bytes) -> Any:
        return pickle.loads(data)
