"""Formats that keep sample bytes and their offset table in two files (``.csv`` + ``.csv.meta``).

The meta file is ``uint32 num_samples | uint32 offsets[num_samples + 1] | config JSON``; the
offsets point into the data file. Shared by the XSV (CSV/TSV) and JSON-lines formats.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from streaming_lightning.errors import CorruptDataError
from streaming_lightning.format.reader import ShardReader, _MappedFile, read_offset_table
from streaming_lightning.format.writer import ShardWriter


class SplitShardWriter(ShardWriter):
    """Writer whose shards are a data file plus a meta file holding offsets and config."""

    def shard_prefix(self) -> bytes:
        """Bytes at the start of every data file before the first sample (e.g. a CSV header)."""
        return b""

    def encode_shard(self, samples: list[bytes]) -> list[tuple[str, bytes]]:
        prefix = self.shard_prefix()
        offsets = np.empty(len(samples) + 1, np.int64)
        offsets[0] = 0
        np.cumsum(np.fromiter(map(len, samples), np.int64, len(samples)), out=offsets[1:])
        offsets += len(prefix)
        config = json.dumps(self.get_config(), sort_keys=True).encode("utf-8")
        meta = struct.pack("<I", len(samples)) + offsets.astype("<u4").tobytes() + config
        return [("data", b"".join([prefix, *samples])), ("meta", meta)]


class SplitShardReader(ShardReader):
    """Reader for :class:`SplitShardWriter` shards."""

    roles = ("data", "meta")
    table_role = "meta"

    def __init__(
        self, dirname: str, split: str | None, spec: dict[str, Any], **kwargs: Any
    ) -> None:
        self._offsets: np.ndarray | None = None
        super().__init__(dirname, split, spec, **kwargs)

    def data_start(self) -> int:
        """Where the first sample begins in the data file."""
        return 0

    def _on_open(self, role: str, mapped: _MappedFile) -> None:
        if role != "meta":
            return
        offsets = read_offset_table(mapped.buffer, mapped.size, mapped.path, self.samples, 0)
        data_bytes = self.files["data"][0].bytes
        if offsets[0] != self.data_start() or offsets[-1] != data_bytes:
            raise CorruptDataError(
                f"{mapped.path}: offsets span {offsets[0]}..{offsets[-1]} but the data file holds "
                f"samples in {self.data_start()}..{data_bytes}; the shard is corrupt."
            )
        self._offsets = offsets

    def _drop_views(self) -> None:
        self._offsets = None

    def get_sample_data(self, idx: int) -> bytes:
        idx = self._check_index(idx)
        self._map("meta")
        data = self._map("data")
        offsets = self._offsets
        assert offsets is not None
        return data.buffer[offsets[idx] : offsets[idx + 1]]  # type: ignore[return-value]

    def _text(self, data: bytes, newline: str, idx: int | None) -> str:
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as err:
            raise CorruptDataError(f"{self._where(idx)}: a sample is not UTF-8 ({err}).") from err
        if not text.endswith(newline):
            raise CorruptDataError(f"{self._where(idx)}: a sample does not end with its newline.")
        return text[: len(text) - len(newline)]

    def _where(self, idx: int | None = None) -> str:
        path = self.path_of(self.files["data"][0].basename)
        return path if idx is None else f"{path} sample {idx}"
