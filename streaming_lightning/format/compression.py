"""Shard compression codecs, by name: ``zstd``, ``zstd:7``, ``gz:9``, ``br``, ``bz2``, ``snappy``.

A name is ``family[:level]``; the file extension is the family. Defaults per family match
mosaicml-streaming 0.13.0 so the same ``compression=`` string yields the same bytes.
Codecs are looked up in a registry instead of an if/elif chain; adding one is one entry.
"""

from __future__ import annotations

import bz2
import gzip
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from streaming_lightning.errors import CompressionError


@dataclass(frozen=True)
class _Family:
    levels: range | None  # None: the codec takes no level
    default_level: int | None
    compress: Callable[[bytes, int | None], bytes]
    #: (data, limit) -> bytes; with a limit, never allocates much more than ``limit`` bytes
    #: however large a size the compressed bytes claim (ValueError past it).
    decompress: Callable[[bytes, int | None], bytes]


def _too_large(limit: int) -> ValueError:
    return ValueError(f"it decompresses to more than the {limit} bytes index.json records")


def _read_capped(stream: BinaryIO, limit: int | None) -> bytes:
    """Read ``stream`` to its end, or fail once it yields more than ``limit`` bytes."""
    if limit is None:
        return stream.read()
    parts, total = [], 0
    while chunk := stream.read(min(1 << 22, limit + 1 - total)):
        parts.append(chunk)
        total += len(chunk)
        if total > limit:
            raise _too_large(limit)
    return b"".join(parts)


def _zstd_compress(data: bytes, level: int | None) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor(level=level or 3).compress(data)


def _zstd_decompress(data: bytes, limit: int | None) -> bytes:
    import zstandard

    # Frames written by the one-shot API carry their content size, and the one-shot
    # decompressor allocates that much up front: check it against the limit first. Frames
    # without one (written by other tools) are decompressed as a stream, capped.
    dctx = zstandard.ZstdDecompressor()
    size = zstandard.frame_content_size(data)
    if limit is not None and size > limit:
        raise ValueError(f"its frame header claims {size} bytes, index.json records {limit}")
    if size >= 0:
        try:
            return dctx.decompress(data)
        except zstandard.ZstdError:
            pass
    if limit is None:
        return dctx.decompressobj().decompress(data)
    with dctx.stream_reader(data, read_across_frames=True) as reader:
        return _read_capped(reader, limit)  # type: ignore[arg-type]


def _gzip_compress(data: bytes, level: int | None) -> bytes:
    # mtime=0: the same shard compresses to the same bytes every time, so hashes are reproducible.
    return gzip.compress(data, level if level is not None else 9, mtime=0)


def _gzip_decompress(data: bytes, limit: int | None) -> bytes:
    if limit is None:
        return gzip.decompress(data)
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as file:
        return _read_capped(file, limit)  # type: ignore[arg-type]


def _bz2_decompress(data: bytes, limit: int | None) -> bytes:
    if limit is None:
        return bz2.decompress(data)
    with bz2.BZ2File(io.BytesIO(data)) as file:
        return _read_capped(file, limit)  # type: ignore[arg-type]


def _brotli_compress(data: bytes, level: int | None) -> bytes:
    import brotli

    return bytes(brotli.compress(data, quality=level if level is not None else 11))


def _brotli_decompress(data: bytes, limit: int | None) -> bytes:
    import brotli

    decompressor = brotli.Decompressor()
    if limit is None or not hasattr(decompressor, "can_accept_more_data"):  # brotli < 1.1
        out = bytes(brotli.decompress(data))
        if limit is not None and len(out) > limit:
            raise _too_large(limit)
        return out
    out = decompressor.process(data, output_buffer_limit=limit + 1)
    while (
        len(out) <= limit
        and not decompressor.is_finished()
        and not decompressor.can_accept_more_data()
    ):
        out += decompressor.process(b"", output_buffer_limit=limit + 1 - len(out))
    if len(out) > limit:
        raise _too_large(limit)
    if not decompressor.is_finished():
        raise ValueError("the brotli stream is truncated")
    return bytes(out)


def _snappy_compress(data: bytes, level: int | None) -> bytes:
    import snappy

    return bytes(snappy.compress(data))


def _snappy_decompress(data: bytes, limit: int | None) -> bytes:
    import snappy

    if limit is not None:
        # The block starts with its uncompressed length (a varint), which the decoder
        # allocates before it looks at the rest.
        size, shift = 0, 0
        for byte in data[:5]:
            size |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        if size > limit:
            raise ValueError(f"its header claims {size} bytes, index.json records {limit}")
    return bytes(snappy.decompress(data))


_FAMILIES: dict[str, _Family] = {
    "br": _Family(range(0, 12), 11, _brotli_compress, _brotli_decompress),
    "bz2": _Family(range(1, 10), 9, lambda d, lvl: bz2.compress(d, lvl or 9), _bz2_decompress),
    "gz": _Family(range(0, 10), 9, _gzip_compress, _gzip_decompress),
    "snappy": _Family(None, None, _snappy_compress, _snappy_decompress),
    "zstd": _Family(range(1, 23), 3, _zstd_compress, _zstd_decompress),
}


def _parse(name: str) -> tuple[str, _Family, int | None]:
    family_name, _, level_text = name.partition(":")
    family = _FAMILIES.get(family_name)
    if family is None:
        raise CompressionError(
            f"Unknown compression {name!r}. Supported: {', '.join(sorted(_FAMILIES))}, "
            "optionally with ':level' (e.g. 'zstd:7')."
        )
    if not level_text:
        return family_name, family, family.default_level
    if family.levels is None:
        raise CompressionError(f"Compression {family_name!r} takes no level, got {name!r}.")
    try:
        level = int(level_text)
    except ValueError:
        level = -1
    if level not in family.levels:
        raise CompressionError(
            f"Invalid level in {name!r}: {family_name} levels are "
            f"{family.levels.start}..{family.levels.stop - 1}."
        )
    return family_name, family, level


def get_compressions() -> set[str]:
    """Every accepted compression name, with and without levels."""
    names: set[str] = set()
    for family_name, family in _FAMILIES.items():
        names.add(family_name)
        for level in family.levels or ():
            names.add(f"{family_name}:{level}")
    return names


def is_compression(name: str | None) -> bool:
    """Whether ``name`` is a valid compression name."""
    if not name:
        return False
    try:
        _parse(name)
    except CompressionError:
        return False
    return True


def validate_compression(name: str | None) -> str | None:
    """Return ``name`` (``None`` for no compression) or raise :class:`CompressionError`."""
    if not name:
        return None
    _parse(name)
    return name


def compression_extension(name: str) -> str:
    """The file extension for ``name``: its family, without the level."""
    return _parse(name)[0]


def compress(name: str | None, data: bytes) -> bytes:
    """Compress ``data`` with codec ``name`` (identity when ``name`` is ``None``)."""
    if not name:
        return data
    _, family, level = _parse(name)
    return family.compress(data, level)


def decompress(
    name: str | None, data: bytes, *, source: str = "<bytes>", max_size: int | None = None
) -> bytes:
    """Decompress ``data``; ``source`` names the file in the error if the bytes are corrupt.

    ``max_size`` (the size index.json records) bounds the output and what is allocated for
    it: compressed bytes that claim or produce more are refused, however large they claim.
    """
    if not name:
        return data
    _, family, _ = _parse(name)
    try:
        return family.decompress(data, max_size)
    except Exception as err:  # each codec raises its own error type for corrupt input
        raise CompressionError(
            f"Cannot decompress {source} with {name}: {err}. The file is corrupt or truncated; "
            "delete it so it is downloaded again."
        ) from err
