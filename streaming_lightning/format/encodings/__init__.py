"""Registry of MDS column encodings, by name — the same names mosaicml-streaming 0.13.0 uses.

An encoding string is ``name`` or ``name:config`` (only ``ndarray`` takes a config). Coders are
built once per distinct string and cached, so the per-sample hot path does no parsing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from streaming_lightning.errors import EncodingError, UnsafeTypeError
from streaming_lightning.format.encodings.base import Coder, no_config
from streaming_lightning.format.encodings.images import (
    JPEGArrayCoder,
    JPEGCoder,
    ListCoder,
    PILCoder,
    PNGCoder,
)
from streaming_lightning.format.encodings.ndarray import NDArrayCoder
from streaming_lightning.format.encodings.scalars import SCALAR_DTYPES, IntCoder, ScalarCoder
from streaming_lightning.format.encodings.text import (
    BytesCoder,
    JSONCoder,
    PickleCoder,
    StrCoder,
    StrDecimalCoder,
    StrFloatCoder,
    StrIntCoder,
)

__all__ = [
    "Coder",
    "check_safe",
    "get_coder",
    "get_mds_encoded_size",
    "get_mds_encodings",
    "is_mds_encoding",
    "is_mds_encoding_safe",
    "mds_decode",
    "mds_encode",
]


def _plain(factory: Callable[[], Coder]) -> Callable[[str, str | None], Coder]:
    def build(name: str, config: str | None) -> Coder:
        no_config(name, config)
        return factory()

    return build


_REGISTRY: dict[str, Callable[[str, str | None], Coder]] = {
    "bytes": _plain(BytesCoder),
    "str": _plain(StrCoder),
    "int": _plain(IntCoder),
    "str_int": _plain(StrIntCoder),
    "str_float": _plain(StrFloatCoder),
    "str_decimal": _plain(StrDecimalCoder),
    "ndarray": lambda name, config: NDArrayCoder(config),
    "pil": _plain(PILCoder),
    "jpeg": _plain(JPEGCoder),
    "png": _plain(PNGCoder),
    "jpeg_array": _plain(JPEGArrayCoder),
    "jpegarray": _plain(JPEGArrayCoder),
    "list[pil]": _plain(lambda: ListCoder(PILCoder())),
    "list[jpeg]": _plain(lambda: ListCoder(JPEGCoder())),
    "list[png]": _plain(lambda: ListCoder(PNGCoder())),
    "json": _plain(JSONCoder),
    "pkl": _plain(PickleCoder),
}
for _dtype in SCALAR_DTYPES:
    _REGISTRY[_dtype] = _plain(functools.partial(ScalarCoder, _dtype))


def get_coder(encoding: str) -> Coder:
    """The coder for ``encoding``; raises :class:`EncodingError` naming the supported ones."""
    if not isinstance(encoding, str):  # before the cache, which would fail to hash a list
        raise EncodingError(f"An encoding must be a string, got {encoding!r:.80}.")
    return _build_coder(encoding)


@functools.lru_cache(maxsize=1024)
def _build_coder(encoding: str) -> Coder:
    name, sep, config = encoding.partition(":")
    build = _REGISTRY.get(name)
    if build is None:
        raise EncodingError(
            f"Unknown MDS encoding {encoding!r:.80}. Supported: {', '.join(sorted(_REGISTRY))}."
        )
    return build(name, config if sep else None)


def get_mds_encodings() -> set[str]:
    """Names of every supported encoding (without configs)."""
    return set(_REGISTRY)


def is_mds_encoding(encoding: str) -> bool:
    """Whether ``encoding`` (with its config, if any) is valid."""
    try:
        get_coder(encoding)
    except EncodingError:
        return False
    return True


def is_mds_encoding_safe(encoding: str) -> bool:
    """Whether decoding ``encoding`` is free of code execution."""
    return get_coder(encoding).safe


def check_safe(
    encodings: list[str], names: list[str], allow_unsafe_types: bool, source: str
) -> None:
    """Refuse to read columns whose decoding executes code unless the user opted in."""
    if allow_unsafe_types:
        return
    for name, encoding in zip(names, encodings):
        if not get_coder(encoding).safe:
            raise UnsafeTypeError(
                f"{source}: column {name!r} uses encoding {encoding!r}, whose decoding can "
                "execute arbitrary code. Only if you trust this data, pass "
                "allow_unsafe_types=True."
            )


def get_mds_encoded_size(encoding: str) -> int | None:
    """Fixed encoded size of ``encoding`` in bytes, or ``None`` when it varies per value."""
    return get_coder(encoding).size


def mds_encode(encoding: str, obj: Any) -> bytes:
    """Encode one value. Already-encoded ``bytes`` pass through, as in mosaicml-streaming."""
    if isinstance(obj, bytes):
        return obj
    return get_coder(encoding).encode(obj)


def mds_decode(encoding: str, data: bytes) -> Any:
    """Decode one value."""
    return get_coder(encoding).decode(data)
