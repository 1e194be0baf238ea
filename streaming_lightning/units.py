"""Human-readable sizes ("64mb", "1.5gb") to integers — shared by writers and the cache limit."""

from __future__ import annotations

from streaming_lightning.errors import ConfigError

_BINARY_UNITS = {
    "b": 1,
    "kb": 1 << 10,
    "mb": 1 << 20,
    "gb": 1 << 30,
    "tb": 1 << 40,
    "pb": 1 << 50,
    "eb": 1 << 60,
}


def parse_bytes(value: int | float | str) -> int:
    """Parse ``value`` as a number of bytes.

    Units are binary (``kb`` = 1024), matching mosaicml-streaming, so a ``size_limit="64mb"``
    produces the same shards under both libraries.
    """
    if isinstance(value, bool):
        raise ConfigError(f"Expected a byte size, got the boolean {value!r}.")
    if isinstance(value, (int, float)):
        return int(value)
    if not isinstance(value, str):
        raise ConfigError(f"Expected a byte size as int or str like '64mb', got {value!r}.")
    text = value.strip().lower()
    # Longest suffix first so "mb" is not taken for "b".
    for suffix in sorted(_BINARY_UNITS, key=len, reverse=True):
        if text.endswith(suffix):
            number = text[: -len(suffix)].strip()
            try:
                return int(float(number) * _BINARY_UNITS[suffix])
            except ValueError:
                break
    else:
        try:
            return int(text)
        except ValueError:
            pass
    raise ConfigError(
        f"Cannot parse byte size {value!r}: use an integer or a number with one of "
        f"{', '.join(_BINARY_UNITS)} (e.g. '64mb')."
    )
