"""JSONReader: JSON-lines shards."""

from __future__ import annotations

import json
from typing import Any

from streaming_lightning.errors import CorruptDataError, IndexFormatError
from streaming_lightning.format.jsonl.writer import JSON_ENCODINGS
from streaming_lightning.format.split import SplitShardReader


class JSONReader(SplitShardReader):
    format = "json"

    def __init__(
        self, dirname: str, split: str | None, spec: dict[str, Any], **kwargs: Any
    ) -> None:
        self.columns: dict[str, str] = dict(spec["columns"])
        self.newline: str = spec["newline"]
        super().__init__(dirname, split, spec, **kwargs)

    @classmethod
    def validate_spec(cls, spec: dict[str, Any], where: str) -> None:
        columns = spec.get("columns")
        if not isinstance(columns, dict) or not all(
            isinstance(e, str) and e in JSON_ENCODINGS for e in columns.values()
        ):
            raise IndexFormatError(
                f"{where}: json shard needs 'columns' mapping names to str/int/float."
            )
        if not isinstance(spec.get("newline"), str) or not spec["newline"]:
            raise IndexFormatError(f"{where}: json shard needs a non-empty 'newline'.")

    def decode_sample(self, data: bytes, idx: int | None = None) -> dict[str, Any]:
        text = self._text(data, self.newline, idx)
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError) as err:  # also: too deep, ints past 4300 digits
            raise CorruptDataError(
                f"{self._where(idx)}: a sample is not valid JSON ({err})."
            ) from err
        if not isinstance(obj, dict):
            raise CorruptDataError(f"{self._where(idx)}: a sample is not a JSON object.")
        return obj
