"""Image encodings: ``pil`` (raw pixels), ``jpeg``, ``png``, their ``list[...]`` forms and
``jpeg_array``. Pillow is imported lazily so importing the library stays fast."""

from __future__ import annotations

import struct
from io import BytesIO
from typing import Any

from streaming_lightning.errors import EncodingError
from streaming_lightning.format.encodings.base import Coder

_PIL_HEADER = struct.Struct("<III")


def _image_class() -> type:
    from PIL import Image

    return Image.Image


class _ImageCoder(Coder):
    name = ""

    def _check_image(self, obj: Any) -> None:
        if not isinstance(obj, _image_class()):
            raise EncodingError(
                f"Encoding {self.name!r} expects a PIL.Image.Image, got {type(obj).__name__}."
            )


class PILCoder(_ImageCoder):
    """``pil``: uint32 width, height, len(mode), the mode in ASCII, then the raw pixels."""

    name = "pil"

    def encode(self, obj: Any) -> bytes:
        self._check_image(obj)
        mode = obj.mode.encode("utf-8")
        width, height = obj.size
        return _PIL_HEADER.pack(width, height, len(mode)) + mode + obj.tobytes()

    def decode(self, data: bytes) -> Any:
        from PIL import Image

        try:
            width, height, mode_size = _PIL_HEADER.unpack_from(data)
            start = _PIL_HEADER.size
            mode = bytes(data[start : start + mode_size]).decode("ascii")
            pixels = bytes(data[start + mode_size :])
            # Pillow allocates the image before it checks there are bytes for it: refuse a
            # size the stored bytes cannot fill (every mode takes at least a bit per pixel).
            if width * height > 8 * len(pixels) or max(width, height) >= 1 << 31:
                raise ValueError(f"{width}x{height} pixels in {len(pixels)} bytes")
            return Image.frombytes(mode, (width, height), pixels)
        except (struct.error, ValueError, UnicodeDecodeError, OverflowError) as err:
            raise EncodingError(f"Encoding 'pil': stored image is corrupt ({err}).") from err


class _FileImageCoder(_ImageCoder):
    pil_format = ""

    def encode(self, obj: Any) -> bytes:
        self._check_image(obj)
        out = BytesIO()
        obj.save(out, format=self.pil_format)
        return out.getvalue()

    def decode(self, data: bytes) -> Any:
        from PIL import Image, UnidentifiedImageError

        try:
            return Image.open(BytesIO(bytes(data)))
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as err:
            # Image.open reads only the header; a bomb is one that claims a huge size.
            raise EncodingError(
                f"Encoding {self.name!r}: stored image is corrupt ({err})."
            ) from err


class JPEGCoder(_FileImageCoder):
    """``jpeg``: the JPEG file. An image opened from a JPEG file is stored without re-encoding."""

    name = "jpeg"
    pil_format = "JPEG"

    def encode(self, obj: Any) -> bytes:
        from PIL.JpegImagePlugin import JpegImageFile

        filename = getattr(obj, "filename", None)
        if isinstance(obj, JpegImageFile) and filename:
            try:
                with open(filename, "rb") as file:
                    return file.read()
            except FileNotFoundError:
                pass
        return super().encode(obj)


class PNGCoder(_FileImageCoder):
    """``png``: the PNG file."""

    name = "png"
    pil_format = "PNG"


def _pack_items(items: list[bytes], *, placeholder: bool) -> bytes:
    head = struct.pack(f"<{len(items) + 1}I", len(items), *map(len, items))
    return (b"\0\0\0\0" if placeholder else b"") + head + b"".join(items)


def _unpack_items(data: bytes, *, placeholder: bool, name: str) -> list[bytes]:
    pos = 4 if placeholder else 0
    try:
        (count,) = struct.unpack_from("<I", data, pos)
        if 4 * count > len(data) - pos - 4:
            raise struct.error(f"{count} items cannot fit in {len(data)} bytes")
        sizes = struct.unpack_from(f"<{count}I", data, pos + 4)
    except struct.error as err:
        raise EncodingError(f"Encoding {name!r}: stored list header is corrupt ({err}).") from err
    pos += 4 + 4 * count
    if pos + sum(sizes) != len(data):
        raise EncodingError(f"Encoding {name!r}: item sizes do not add up to the stored length.")
    items = []
    for size in sizes:
        items.append(bytes(data[pos : pos + size]))
        pos += size
    return items


class ListCoder(Coder):
    """``list[pil|jpeg|png]``: uint32 0 (reserved), uint32 count, uint32 sizes, then the items."""

    accepts = (list,)

    def __init__(self, item: _ImageCoder) -> None:
        self.item = item
        self.name = f"list[{item.name}]"

    def encode(self, obj: Any) -> bytes:
        self._check_type(obj, self.name)
        return _pack_items([self.item.encode(x) for x in obj], placeholder=True)

    def decode(self, data: bytes) -> list[Any]:
        items = _unpack_items(data, placeholder=True, name=self.name)
        return [self.item.decode(x) for x in items]


class JPEGArrayCoder(Coder):
    """``jpeg_array`` / ``jpegarray``: already-encoded JPEG files (bytes), decoded to images."""

    accepts = (list, tuple)

    def encode(self, obj: Any) -> bytes:
        self._check_type(obj, "jpeg_array")
        items = []
        for item in obj:
            if not isinstance(item, (bytes, bytearray, memoryview)):
                raise EncodingError(
                    f"Encoding 'jpeg_array' expects a list of JPEG bytes, got {type(item).__name__}."
                )
            items.append(bytes(item))
        return _pack_items(items, placeholder=False)

    def decode(self, data: bytes) -> list[Any]:
        items = _unpack_items(data, placeholder=False, name="jpeg_array")
        if not items:
            raise EncodingError("Encoding 'jpeg_array': stored list is empty.")
        jpeg = JPEGCoder()
        return [jpeg.decode(x) for x in items]
