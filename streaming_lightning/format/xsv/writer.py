"""XSVWriter, CSVWriter, TSVWriter: one delimited text line per sample, columns sorted by name,
with a header line per shard."""

from __future__ import annotations

from typing import Any

from streaming_lightning.errors import ConfigError, EncodingError
from streaming_lightning.format.split import SplitShardWriter
from streaming_lightning.format.xsv.encodings import XSV_ENCODINGS, is_xsv_encoding, xsv_encode


class XSVWriter(SplitShardWriter):
    """Write delimited text shards with any ``separator``."""

    format = "xsv"

    def __init__(
        self,
        *,
        columns: dict[str, str],
        separator: str,
        newline: str = "\n",
        out: str | tuple[str, str],
        **kwargs: Any,
    ) -> None:
        if not isinstance(columns, dict) or not columns:
            raise ConfigError(
                f"{type(self).__name__} needs columns: a non-empty dict of name -> encoding."
            )
        if not separator or not newline or separator in newline or newline in separator:
            raise ConfigError(
                f"separator {separator!r} and newline {newline!r} must be non-empty and distinct."
            )
        self.separator = separator
        self.newline = newline
        self.column_names = sorted(columns)
        self.column_encodings = [columns[name] for name in self.column_names]
        for name, encoding in zip(self.column_names, self.column_encodings):
            if separator in name or newline in name:
                raise ConfigError(f"Column name {name!r} contains the separator or newline.")
            if not is_xsv_encoding(encoding):
                raise EncodingError(
                    f"Column {name!r}: unknown XSV encoding {encoding!r}; use one of {sorted(XSV_ENCODINGS)}."
                )
        self.columns = dict(columns)
        super().__init__(out=out, **kwargs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            column_names=self.column_names,
            column_encodings=self.column_encodings,
            separator=self.separator,
            newline=self.newline,
        )
        return config

    def shard_prefix(self) -> bytes:
        return (self.separator.join(self.column_names) + self.newline).encode("utf-8")

    def encode_sample(self, sample: dict[str, Any]) -> bytes:
        values = []
        for name, encoding in zip(self.column_names, self.column_encodings):
            try:
                value = xsv_encode(encoding, sample[name])
            except KeyError:
                raise EncodingError(f"Sample is missing column {name!r}.") from None
            if self.separator in value or self.newline in value:
                raise EncodingError(
                    f"Column {name!r}: value {value[:60]!r} contains the separator or newline, "
                    "which this format cannot escape. Use MDS or JSON for free text."
                )
            values.append(value)
        return (self.separator.join(values) + self.newline).encode("utf-8")


class _FixedSeparatorWriter(XSVWriter):
    separator_char = ""

    def __init__(
        self,
        *,
        columns: dict[str, str],
        newline: str = "\n",
        out: str | tuple[str, str],
        **kwargs: Any,
    ) -> None:
        super().__init__(
            columns=columns, separator=self.separator_char, newline=newline, out=out, **kwargs
        )

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["separator"]  # implied by the format name
        return config


class CSVWriter(_FixedSeparatorWriter):
    """Comma-separated shards (``format: csv``)."""

    format = "csv"
    separator_char = ","


class TSVWriter(_FixedSeparatorWriter):
    """Tab-separated shards (``format: tsv``)."""

    format = "tsv"
    separator_char = "\t"
