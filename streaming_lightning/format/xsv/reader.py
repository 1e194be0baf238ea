"""XSVReader, CSVReader, TSVReader."""

from __future__ import annotations

from typing import Any, ClassVar

from streaming_lightning.errors import CorruptDataError, EncodingError, IndexFormatError
from streaming_lightning.format.reader import column_error
from streaming_lightning.format.split import SplitShardReader
from streaming_lightning.format.xsv.encodings import is_xsv_encoding, xsv_decode


class XSVReader(SplitShardReader):
    """Read delimited text shards; the separator comes from the index entry."""

    format = "xsv"
    fixed_separator: ClassVar[str | None] = None

    def __init__(
        self, dirname: str, split: str | None, spec: dict[str, Any], **kwargs: Any
    ) -> None:
        self.column_names: list[str] = list(spec["column_names"])
        self.column_encodings: list[str] = list(spec["column_encodings"])
        self.newline: str = spec["newline"]
        self.separator: str = self.fixed_separator or spec["separator"]
        super().__init__(dirname, split, spec, **kwargs)

    @classmethod
    def validate_spec(cls, spec: dict[str, Any], where: str) -> None:
        names = cls._require_list(spec, "column_names", where)
        encodings = cls._require_list(spec, "column_encodings", where)
        if len(names) != len(encodings) or not names:
            raise IndexFormatError(f"{where}: column_names and column_encodings differ in length.")
        if not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
            raise IndexFormatError(f"{where}: column_names must be unique non-empty strings.")
        for encoding in encodings:
            if not isinstance(encoding, str) or not is_xsv_encoding(encoding):
                raise IndexFormatError(f"{where}: unknown XSV encoding {encoding!r:.80}.")
        keys = ["newline"] if cls.fixed_separator else ["newline", "separator"]
        for key in keys:
            if not isinstance(spec.get(key), str) or not spec[key]:
                raise IndexFormatError(f"{where}: {cls.format} shard needs a non-empty {key!r}.")

    def data_start(self) -> int:
        return len((self.separator.join(self.column_names) + self.newline).encode("utf-8"))

    def decode_sample(self, data: bytes, idx: int | None = None) -> dict[str, Any]:
        parts = self._text(data, self.newline, idx).split(self.separator)
        if len(parts) != len(self.column_names):
            raise CorruptDataError(
                f"{self._where(idx)}: a row has {len(parts)} fields, expected "
                f"{len(self.column_names)}."
            )
        sample = {}
        for name, encoding, part in zip(self.column_names, self.column_encodings, parts):
            try:
                sample[name] = xsv_decode(encoding, part)
            except EncodingError as err:
                raise column_error(err, self._where(idx), name) from err
        return sample


class CSVReader(XSVReader):
    format = "csv"
    fixed_separator = ","


class TSVReader(XSVReader):
    format = "tsv"
    fixed_separator = "\t"
