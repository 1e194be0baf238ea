"""Column encodings of the XSV (CSV/TSV) format: ``str``, ``int`` and ``float`` as text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streaming_lightning.errors import EncodingError

# name -> (accepted types, text -> value)
XSV_ENCODINGS: dict[str, tuple[tuple[type, ...], Callable[[str], Any]]] = {
    "str": ((str,), str),
    "int": ((int,), int),
    "float": ((float,), float),
}


def is_xsv_encoding(encoding: str) -> bool:
    return encoding in XSV_ENCODINGS


def xsv_encode(encoding: str, value: Any) -> str:
    types, _ = XSV_ENCODINGS[encoding]
    if not isinstance(value, types) or (encoding != "int" and isinstance(value, bool)):
        raise EncodingError(
            f"XSV encoding {encoding!r} expects {types[0].__name__}, got {value!r:.80}."
        )
    return str(value)


def xsv_decode(encoding: str, text: str) -> Any:
    _, parse = XSV_ENCODINGS[encoding]
    try:
        return parse(text)
    except ValueError as err:
        raise EncodingError(f"XSV value {text[:40]!r} is not a valid {encoding}.") from err
