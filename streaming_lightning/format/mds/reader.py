"""MDSReader: random access into an MDS shard through a memory map and its offset table."""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from streaming_lightning.errors import CorruptDataError, EncodingError, IndexFormatError
from streaming_lightning.format.encodings import check_safe, get_coder
from streaming_lightning.format.encodings.base import Coder
from streaming_lightning.format.reader import (
    LARGE_READ,
    ShardReader,
    _MappedFile,
    column_error,
    read_offset_table,
)


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
        sizes = self.column_sizes
        #: Bytes per sample when every column is fixed-size (then samples decode in batches).
        fixed = [size for size in sizes if size is not None]
        self._fixed_size: int | None = sum(fixed) if len(fixed) == len(sizes) else None
        self._rows: np.ndarray | None = None
        self._decoder: Callable[[int], dict[str, Any]] | None = None
        super().__init__(dirname, split, spec, **kwargs)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.update(_sizes_struct=None, _offsets=None, _rows=None, _decoder=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        num_variable = sum(size is None for size in self.column_sizes)
        self._sizes_struct = struct.Struct(f"<{num_variable}I")

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
        if self._fixed_size and self.samples:
            # Fixed-size samples sit back to back: the data region is an (n, size) array, and
            # a batch of samples is one fancy-indexed gather. Check the offsets really say so.
            first, size = int(offsets[0]), self._fixed_size
            if int(offsets[-1]) - first != self.samples * size or np.any(np.diff(offsets) != size):
                raise CorruptDataError(
                    f"{mapped.path}: offsets disagree with the fixed sample size {size} its "
                    "columns imply; the shard is corrupt."
                )
            self._rows = np.frombuffer(mapped.buffer, np.uint8, self.samples * size, first).reshape(
                self.samples, size
            )

    def _check_config(self, mapped: _MappedFile, start: int, end: int) -> None:
        try:
            config = json.loads(bytes(mapped.buffer[start:end]))
        except (ValueError, RecursionError):  # not UTF-8, not JSON, nested too deep
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
        self._rows = None
        self._decoder = None

    def get_sample_data(self, idx: int) -> bytes:
        idx = self._check_index(idx)
        mapped = self._map("data")
        offsets = self._offsets
        assert offsets is not None
        return mapped.buffer[offsets[idx] : offsets[idx + 1]]  # type: ignore[return-value]

    def decode_sample(self, data: bytes, idx: int | None = None) -> dict[str, Any]:
        """Decode one sample's stored bytes (e.g. read by byte range from a remote shard)."""
        return self._decode_at(data, 0, len(data), idx)

    def _decode_at(
        self, buffer: Any, start: int, stop: int, idx: int | None = None
    ) -> dict[str, Any]:
        """Decode the sample stored at ``buffer[start:stop]`` (``decode_sample``'s path; shard
        reads go through ``sample_decoder``)."""
        pos = start + self._sizes_struct.size
        if stop - start < self._sizes_struct.size:
            raise CorruptDataError(f"{self._where(idx)}: a sample is shorter than its size header.")
        variable = iter(self._sizes_struct.unpack_from(buffer, start))
        sample: dict[str, Any] = {}
        for name, coder, size in zip(self.column_names, self._coders, self.column_sizes):
            end = pos + (next(variable) if size is None else size)
            if end > stop:
                raise CorruptDataError(
                    f"{self._where(idx)}: column {name!r} runs past the end of its sample."
                )
            try:
                sample[name] = coder.decode(buffer[pos:end])
            except EncodingError as err:
                raise column_error(err, self._where(idx), name) from err
            pos = end
        if pos != stop:
            raise CorruptDataError(
                f"{self._where(idx)}: column sizes do not add up to the sample size."
            )
        return sample

    def __getitem__(self, idx: int) -> dict[str, Any]:
        return self.sample_decoder()(self._check_index(idx))

    def sample_decoder(self) -> Callable[[int], dict[str, Any]]:
        """A function ``index -> sample`` with everything it needs bound locally: the
        per-sample path (large or variable-size samples, random access) runs once per
        sample, so its Python overhead is most of the cost beyond the copy itself. Valid
        until the reader is closed; ``index`` must already be in range."""
        if self._decoder is not None:
            return self._decoder
        mapped = self._map("data")
        offsets, buffer, fd = self._offsets, mapped.buffer, mapped.fd
        assert offsets is not None
        header = self._sizes_struct.size
        unpack_sizes = self._sizes_struct.unpack_from
        has_variable = header > 0
        plan: list[tuple[str, Coder, int | None, Any]] = []
        for name, coder, size in zip(self.column_names, self._coders, self.column_sizes):
            unpack = struct.Struct(coder.struct_format).unpack_from if coder.struct_format else None
            plan.append((name, coder, size, unpack))
        where = self._where
        large = LARGE_READ if fd is not None else 1 << 62

        def _pread(fd: int, size: int, offset: int) -> bytes:
            data = os.pread(fd, size, offset)
            if len(data) != size:
                raise CorruptDataError(f"{where()}: the file shrank while being read.")
            return data

        def decode(idx: int) -> dict[str, Any]:
            start, stop = int(offsets[idx]), int(offsets[idx + 1])
            if stop - start < header:
                raise CorruptDataError(f"{where(idx)}: a sample is shorter than its size header.")
            # A large sample is read with pread only, never through the map: a map keeps
            # every page it touched resident (fault-around maps 64 KB per touch), so
            # streaming a few GB of images would grow the process by as much.
            direct = stop - start >= large
            if not has_variable:
                sizes: tuple[int, ...] = ()
            elif direct:
                sizes = unpack_sizes(_pread(fd, header, start))  # type: ignore[arg-type]
            else:
                sizes = unpack_sizes(buffer, start)
            pos, var, sample = start + header, 0, {}
            for name, coder, size, unpack in plan:
                if size is None:
                    end = pos + sizes[var]
                    var += 1
                else:
                    end = pos + size
                if end > stop:
                    raise CorruptDataError(
                        f"{where(idx)}: column {name!r} runs past the end of its sample."
                    )
                if unpack is not None and not direct:
                    sample[name] = unpack(buffer, pos)[0]
                    pos = end
                    continue
                data = _pread(fd, end - pos, pos) if direct else buffer[pos:end]  # type: ignore[arg-type]
                if unpack is not None:
                    sample[name] = unpack(data)[0]
                elif coder.identity:
                    sample[name] = data
                else:
                    try:
                        sample[name] = coder.decode(data)
                    except EncodingError as err:
                        raise column_error(err, where(idx), name) from err
                pos = end
            if pos != stop:
                raise CorruptDataError(
                    f"{where(idx)}: column sizes do not add up to the sample size."
                )
            return sample

        variable_at = [i for i, (_, _, size, _) in enumerate(plan) if size is None]
        if fd is not None and len(variable_at) == 1:
            # One variable column (e.g. an image beside a label): its size follows from the
            # offsets, so a large sample costs one pread for it and one for the fixed
            # columns after it (those before it share a pread with the size header).
            at = variable_at[0]
            before, after = plan[:at], plan[at + 1 :]
            head = header + sum(size or 0 for _, _, size, _ in before)
            tail = sum(size or 0 for _, _, size, _ in after)
            var_name, var_coder = plan[at][0], plan[at][1]

            def fixed(part: list[Any], data: bytes, sample: dict[str, Any], idx: int) -> None:
                pos = 0
                for name, coder, size, unpack in part:
                    if unpack is not None:
                        sample[name] = unpack(data, pos)[0]
                    else:
                        try:
                            sample[name] = coder.decode(data[pos : pos + size])
                        except EncodingError as err:
                            raise column_error(err, where(idx), name) from err
                    pos += size

            def decode_one_variable(idx: int) -> dict[str, Any]:
                start, stop = int(offsets[idx]), int(offsets[idx + 1])
                if stop - start < large:
                    return decode(idx)
                length = stop - start - head - tail
                sample: dict[str, Any] = {}
                if before:
                    fixed(before, _pread(fd, head, start)[header:], sample, idx)  # type: ignore[arg-type]
                data = _pread(fd, length, start + head)  # type: ignore[arg-type]
                try:
                    sample[var_name] = data if var_coder.identity else var_coder.decode(data)
                except EncodingError as err:
                    raise column_error(err, where(idx), var_name) from err
                if after:
                    fixed(after, _pread(fd, tail, stop - tail), sample, idx)  # type: ignore[arg-type]
                return sample

            if before or not var_coder.identity or len(after) != 1 or after[0][3] is None:
                self._decoder = decode_one_variable
                return decode_one_variable
            # The common shape — raw bytes then one number (an encoded image and its label):
            # the same reads with the per-sample Python cut to the minimum, since at ~100 KB
            # a sample costs ~10 us and every microsecond of overhead shows.
            label_name, label_unpack = after[0][0], after[0][3]
            item, pread = offsets.item, os.pread
            skip = head

            def decode_bytes_and_number(idx: int) -> dict[str, Any]:
                start, stop = item(idx), item(idx + 1)
                if stop - start < large:
                    return decode(idx)
                length = stop - start - skip - tail
                data = pread(fd, length, start + skip)
                number = pread(fd, tail, stop - tail)
                if len(data) != length or len(number) != tail:
                    raise CorruptDataError(f"{where()}: the file shrank while being read.")
                return {var_name: data, label_name: label_unpack(number)[0]}

            self._decoder = decode_bytes_and_number
            return decode_bytes_and_number

        self._decoder = decode
        return decode

    def get_samples(self, indices: Sequence[int] | np.ndarray) -> list[dict[str, Any]]:
        mapped = self._map("data")
        idx = np.asarray(indices, np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= self.samples):
            raise IndexError(f"Sample indices out of range for a shard of {self.samples} samples.")
        if self._rows is not None:
            return self._decode_fixed(self._gather(idx, mapped))
        decode = self.sample_decoder()
        return [decode(i) for i in idx.tolist()]

    @property
    def fixed_size_samples(self) -> bool:
        return self._fixed_size is not None

    def will_need(self, indices: np.ndarray) -> None:
        mapped = self._map("data")
        offsets = self._offsets
        if mapped.fd is None or offsets is None or not hasattr(os, "posix_fadvise"):
            return
        idx = np.asarray(indices, np.int64)
        idx = idx[(idx >= 0) & (idx < self.samples)]
        starts, stops = offsets[idx].tolist(), offsets[idx + 1].tolist()
        for start, stop in zip(starts, stops):
            os.posix_fadvise(mapped.fd, start, stop - start, os.POSIX_FADV_WILLNEED)

    @property
    def offset_table_bytes(self) -> int | None:
        _, zipped = self.files["data"]
        return None if zipped is not None else 4 + 4 * (self.samples + 1)

    def sample_spans(self, table: bytes, indices: np.ndarray, where: str) -> np.ndarray:
        raw, _ = self.files["data"]
        offsets = read_offset_table(table, len(table), where, self.samples, 0)
        header_end = 4 + 4 * (self.samples + 1)
        if offsets[0] < header_end or offsets[-1] != raw.bytes:
            raise CorruptDataError(
                f"{where}: offset table does not span the file (first {offsets[0]}, last "
                f"{offsets[-1]}, index.json size {raw.bytes}); the shard is corrupt."
            )
        idx = np.asarray(indices, np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= self.samples):
            raise IndexError(f"Sample indices out of range for a shard of {self.samples} samples.")
        return np.stack([offsets[idx], offsets[idx + 1]], axis=1).astype(np.int64)

    @property
    def decoding_is_copy(self) -> bool:
        return all(
            coder.identity or size is not None
            for coder, size in zip(self._coders, self.column_sizes)
        )

    @property
    def batchable(self) -> bool:
        """Whether whole batches decode straight from rows (every column fixed-size and
        stackable): then ``get_rows`` + ``decode_batch`` replace per-sample dicts."""
        return self._fixed_size is not None and all(
            coder.decode_batch(np.zeros((0, size), np.uint8)) is not None  # type: ignore[arg-type]
            for coder, size in zip(self._coders, self.column_sizes)
        )

    def get_rows(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """The stored bytes of fixed-size samples as a (k, sample size) uint8 array (a copy)."""
        self._map("data")
        if self._rows is None:
            raise TypeError(f"{self._where()}: samples are not fixed-size; use get_samples().")
        idx = np.asarray(indices, np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= self.samples):
            raise IndexError(f"Sample indices out of range for a shard of {self.samples} samples.")
        return self._gather(idx, self._map("data"))

    def _gather(self, idx: np.ndarray, mapped: _MappedFile) -> np.ndarray:
        """Rows ``idx`` of the fixed-size data region, as a new (k, size) array. A run of
        consecutive samples (unshuffled reading) is one pread, which copies straight from
        the page cache without mapping the pages into this process (so reading a dataset
        does not grow every worker's resident memory by the shards it touched)."""
        rows = self._rows
        assert rows is not None and self._fixed_size is not None
        count = len(idx)
        if count > 1 and mapped.fd is not None:
            first = int(idx[0])
            if int(idx[-1]) - first == count - 1 and (np.diff(idx) == 1).all():
                size = self._fixed_size
                assert self._offsets is not None
                out = np.empty((count, size), np.uint8)  # writable, like a gather's result
                if os.preadv(mapped.fd, [out.data], int(self._offsets[first])) == out.nbytes:
                    return out
        return rows[idx]

    def decode_batch(self, rows: np.ndarray) -> dict[str, Any]:
        """Columns of a batch of rows (from ``get_rows``) as stacked arrays, the values
        ``torch.utils.data.default_collate`` would produce from the decoded samples."""
        batch: dict[str, Any] = {}
        pos = 0
        for name, coder, size in zip(self.column_names, self._coders, self.column_sizes):
            assert size is not None
            batch[name] = coder.decode_batch(rows[:, pos : pos + size])
            pos += size
        return batch

    def _decode_fixed(self, rows: np.ndarray) -> list[dict[str, Any]]:
        """Decode a batch of fixed-size samples column by column (vectorised per column)."""
        columns = []
        pos = 0
        for coder, size in zip(self._coders, self.column_sizes):
            assert size is not None
            columns.append(coder.decode_rows(rows[:, pos : pos + size]))
            pos += size
        names = self.column_names
        if len(names) == 1:
            return [{names[0]: value} for value in columns[0]]
        if len(names) == 2:
            first, second = names
            return [{first: a, second: b} for a, b in zip(columns[0], columns[1])]
        return [dict(zip(names, values)) for values in zip(*columns)]

    def _where(self, idx: int | None = None) -> str:
        path = self.path_of(self.files["data"][0].basename)
        return path if idx is None else f"{path} sample {idx}"
