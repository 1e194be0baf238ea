"""MDSWriter: samples as typed columns in one binary file per shard.

Shard bytes::

    uint32 num_samples | uint32 offsets[num_samples + 1] | config JSON | samples

where a sample is the uint32 sizes of its variable-size columns followed by every column's
encoded bytes, columns sorted by name.
"""

from __future__ import annotations

import functools
import json
import struct
from typing import Any

import numpy as np

from streaming_lightning.errors import ConfigError, EncodingError
from streaming_lightning.format.encodings import get_coder
from streaming_lightning.format.writer import ShardWriter


class MDSWriter(ShardWriter):
    """Write a dataset in mosaicml-streaming's MDS format.

    ``columns`` maps each field name to an encoding (``'int'``, ``'str'``, ``'jpeg'``,
    ``'ndarray:uint16:2048'`` ...). Values that are already ``bytes`` are stored as given.
    """

    format = "mds"
    extra_bytes_per_sample = 4  # the sample's entry in the offset table

    def __init__(
        self, *, columns: dict[str, str], out: str | tuple[str, str], **kwargs: Any
    ) -> None:
        if not isinstance(columns, dict) or not columns:
            raise ConfigError("MDSWriter needs columns: a non-empty dict of name -> encoding.")
        self.column_names: list[str] = sorted(columns)
        self.column_encodings: list[str] = [columns[name] for name in self.column_names]
        coders = []
        for name, encoding in zip(self.column_names, self.column_encodings):
            try:
                coders.append(get_coder(encoding))
            except EncodingError as err:
                raise EncodingError(f"MDSWriter column {name!r}: {err}") from None
        self.column_sizes: list[int | None] = [coder.size for coder in coders]
        self.columns = dict(columns)
        self._plan = list(zip(self.column_names, self.column_encodings, coders, self.column_sizes))
        num_variable = sum(size is None for size in self.column_sizes)
        self._sizes_struct = struct.Struct(f"<{num_variable}I")
        super().__init__(out=out, **kwargs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            column_names=self.column_names,
            column_encodings=self.column_encodings,
            column_sizes=self.column_sizes,
        )
        return config

    @functools.cached_property
    def config_data(self) -> bytes:
        return json.dumps(self.get_config(), sort_keys=True).encode("utf-8")

    @property
    def extra_bytes_per_shard(self) -> int:
        return 4 + 4 + len(self.config_data)

    def encode_sample(self, sample: dict[str, Any]) -> bytes:
        sizes: list[int] = []
        parts: list[bytes] = []
        for name, encoding, coder, size in self._plan:
            try:
                value = sample[name]
            except KeyError:
                raise EncodingError(
                    f"Sample is missing column {name!r}; the writer's columns are {self.column_names}."
                ) from None
            except TypeError:
                raise EncodingError(
                    f"A sample must be a dict, got {type(sample).__name__}."
                ) from None
            data = value if type(value) is bytes else coder.encode(value)
            if size is None:
                sizes.append(len(data))
            elif len(data) != size:
                raise EncodingError(
                    f"Column {name!r} ({encoding}) holds exactly {size} bytes per value, got "
                    f"{len(data)}; was the value typed for this encoding?"
                )
            parts.append(data)
        if sizes and max(sizes) >= 1 << 32:
            raise EncodingError("A value is 4 GiB or larger; MDS stores sizes as uint32.")
        return self._sizes_struct.pack(*sizes) + b"".join(parts)

    def encode_shard(self, samples: list[bytes]) -> list[tuple[str, bytes]]:
        header_size = 4 + 4 * (len(samples) + 1) + len(self.config_data)
        offsets = np.empty(len(samples) + 1, np.int64)
        offsets[0] = header_size
        np.cumsum(np.fromiter(map(len, samples), np.int64, len(samples)), out=offsets[1:])
        offsets[1:] += header_size
        if offsets[-1] >= 1 << 32:
            raise EncodingError("A shard reached 4 GiB; MDS offsets are uint32. Lower size_limit.")
        head = struct.pack("<I", len(samples)) + offsets.astype("<u4").tobytes() + self.config_data
        return [("data", b"".join([head, *samples]))]
