"""MDSReader: random access into an MDS shard through a memory map and its offset table."""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from streaming_lightning.errors import CorruptDataError, EncodingError, IndexFormatError
from streaming_lightning.format.encodings import check_safe, get_coder
from streaming_lightning.format.reader import ShardReader, _MappedFile, read_offset_table


class MDSReader(ShardReader):
    """Read one MDS shard (see :mod:`streaming_lightning.format.mds.writer` for the layout)."""

    format = "mds"

    def __init__(
        self, dirname: str, split: str | None, spec: dict[str, Any], **kwargs: Any
    ) -> None:
        self.column_names: list[str] = list(spec["column_names"])
        self.column_encodings: list[str] = list(spec["column_encodings"])
        self.column_sizes: list[int | None] = list(spec["column_sizes"])
        self._coders = [get_coder(e) for e in self.column_encodings]
        num_variable = sum(size is None for size in self.column_sizes)
        self._sizes_struct = struct.Struct(f"<{num_variable}I")
        self._offsets: np.ndarray | None = None
        super().__init__(dirname, split, spec, **kwargs)

    @classmethod
    def validate_spec(cls, spec: dict[str, Any], where: str) -> None:
        names = cls._require_list(spec, "column_names", where)
        encodings = cls._require_list(spec, "column_encodings", where)
        sizes = cls._require_list(spec, "column_sizes", where)
        if not (len(names) == len(encodings) == len(sizes)) or not names:
            raise IndexFormatError(
                f"{where}: column_names/encodings/sizes differ in length or are empty."
            )
        if not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
            raise IndexFormatError(f"{where}: column_names must be unique strings.")
        for name, encoding, size in zip(names, encodings, sizes):
            try:
                coder = get_coder(encoding)
            except EncodingError as err:
                raise EncodingError(f"{where}: column {name!r}: {err}") from None
            if size != coder.size:
                raise IndexFormatError(
                    f"{where}: column {name!r} ({encoding}) has size {size!r}, expected {coder.size!r}."
                )

    def check_safe(self) -> None:
        check_safe(
            self.column_encodings,
            self.column_names,
            self.allow_unsafe_types,
            source=f"{self.root}/index.json ({self.files['data'][0].basename})",
        )

    def _on_open(self, role: str, mapped: _MappedFile) -> None:
        offsets = read_offset_table(mapped.buffer, mapped.size, mapped.path, self.samples, 0)
        header_end = 4 + 4 * (self.samples + 1)
        if offsets[0] < header_end or offsets[-1] != mapped.size:
            raise CorruptDataError(
                f"{mapped.path}: offset table does not span the file (first {offsets[0]}, "
                f"last {offsets[-1]}, size {mapped.size}); the shard is corrupt or truncated."
            )
        self._check_config(mapped, header_end, int(offsets[0]))
        self._offsets = offsets

    def _check_config(self, mapped: _MappedFile, start: int, end: int) -> None:
        try:
            config = json.loads(bytes(mapped.buffer[start:end]))
        except (json.JSONDecodeError, UnicodeDecodeError):
            config = None
        if (
            not isinstance(config, dict)
            or config.get("column_encodings") != self.column_encodings
            or config.get("column_names") != self.column_names
        ):
            raise CorruptDataError(
                f"{mapped.path}: embedded shard config does not match index.json's columns."
            )

    def _drop_views(self) -> None:
        self._offsets = None

    def get_sample_data(self, idx: int) -> bytes:
        idx = self._check_index(idx)
        mapped = self._map("data")
        offsets = self._offsets
        assert offsets is not None
        return mapped.buffer[offsets[idx] : offsets[idx + 1]]  # type: ignore[return-value]

    def decode_sample(self, data: bytes) -> dict[str, Any]:
        pos = self._sizes_struct.size
        if len(data) < pos:
            raise CorruptDataError(f"{self._where()}: a sample is shorter than its size header.")
        variable = iter(self._sizes_struct.unpack_from(data))
        sample: dict[str, Any] = {}
        for name, coder, size in zip(self.column_names, self._coders, self.column_sizes):
            length = next(variable) if size is None else size
            end = pos + length
            if end > len(data):
                raise CorruptDataError(
                    f"{self._where()}: column {name!r} runs past the end of its sample."
                )
            sample[name] = coder.decode(data[pos:end])
            pos = end
        if pos != len(data):
            raise CorruptDataError(
                f"{self._where()}: column sizes do not add up to the sample size."
            )
        return sample

    def get_samples(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        mapped = self._map("data")
        offsets = self._offsets
        assert offsets is not None
        buffer = mapped.buffer
        decode = self.decode_sample
        idx = np.asarray(indices, np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= self.samples):
            raise IndexError(f"Sample indices out of range for a shard of {self.samples} samples.")
        starts, ends = offsets[idx].tolist(), offsets[idx + 1].tolist()
        return [decode(buffer[a:b]) for a, b in zip(starts, ends)]  # type: ignore[arg-type]

    def _where(self) -> str:
        return self.path_of(self.files["data"][0].basename)
