"""JSONWriter: one JSON object per line (JSON Lines), keys sorted; format name ``json``."""

from __future__ import annotations

import json
from typing import Any

from streaming_lightning.errors import ConfigError, EncodingError
from streaming_lightning.format.split import SplitShardWriter

JSON_ENCODINGS: dict[str, type] = {"str": str, "int": int, "float": float}


class JSONWriter(SplitShardWriter):
    """Write JSON-lines shards. ``columns`` maps names to ``str``, ``int`` or ``float``."""

    format = "json"

    def __init__(
        self,
        *,
        columns: dict[str, str],
        newline: str = "\n",
        out: str | tuple[str, str],
        **kwargs: Any,
    ) -> None:
        if not isinstance(columns, dict) or not columns:
            raise ConfigError("JSONWriter needs columns: a non-empty dict of name -> encoding.")
        for name, encoding in columns.items():
            if encoding not in JSON_ENCODINGS:
                raise EncodingError(
                    f"Column {name!r}: unknown JSON encoding {encoding!r}; use one of {sorted(JSON_ENCODINGS)}."
                )
        if not newline or newline.strip():
            raise ConfigError(f"newline must be non-empty whitespace, got {newline!r}.")
        self.columns = dict(columns)
        self.newline = newline
        super().__init__(out=out, **kwargs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(columns=self.columns, newline=self.newline)
        return config

    def encode_sample(self, sample: dict[str, Any]) -> bytes:
        obj = {}
        for name, encoding in self.columns.items():
            try:
                value = sample[name]
            except KeyError:
                raise EncodingError(f"Sample is missing column {name!r}.") from None
            if not isinstance(value, JSON_ENCODINGS[encoding]):
                raise EncodingError(
                    f"Column {name!r} ({encoding}): got {type(value).__name__} {value!r:.60}."
                )
            obj[name] = value
        return (json.dumps(obj, sort_keys=True) + self.newline).encode("utf-8")
