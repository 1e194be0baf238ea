"""Deterministic samples covering every MDS encoding, and a normaliser to compare decoded values
across libraries (PIL images and numpy values do not compare with ==)."""

from __future__ import annotations

from decimal import Decimal
from io import BytesIO
from typing import Any

import numpy as np
from PIL import Image

SCALARS = [
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "int8",
    "int16",
    "int32",
    "int64",
    "float16",
    "float32",
    "float64",
]

ALL_COLUMNS: dict[str, str] = {
    "c_bytes": "bytes",
    "c_str": "str",
    "c_int": "int",
    "c_str_int": "str_int",
    "c_str_float": "str_float",
    "c_str_decimal": "str_decimal",
    "c_nd": "ndarray",
    "c_nd_dtype": "ndarray:float32",
    "c_nd_fixed": "ndarray:uint16:8",
    "c_nd_fixed2d": "ndarray:int64:2,3",
    "c_pil": "pil",
    "c_jpeg": "jpeg",
    "c_png": "png",
    "c_jpeg_array": "jpeg_array",
    "c_jpegarray": "jpegarray",
    "c_list_pil": "list[pil]",
    "c_list_jpeg": "list[jpeg]",
    "c_list_png": "list[png]",
    "c_json": "json",
    "c_pkl": "pkl",
    **{f"c_{name}": name for name in SCALARS},
}


def image(i: int, size: tuple[int, int] = (6, 5), mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(i)
    channels = {"RGB": 3, "L": 1}[mode]
    pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    return Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels)


def jpeg_bytes(i: int) -> bytes:
    out = BytesIO()
    image(i).save(out, format="JPEG")
    return out.getvalue()


def value_for(encoding: str, i: int) -> Any:
    rng = np.random.default_rng(1000 + i)
    if encoding in SCALARS:
        info = np.finfo(encoding) if encoding.startswith("float") else np.iinfo(encoding)
        return np.dtype(encoding).type(info.max if i % 3 == 0 else info.min if i % 3 == 1 else i)
    table: dict[str, Any] = {
        "bytes": rng.bytes(int(rng.integers(0, 40))),
        "str": f"héllo wörld {i} " * (i % 4),
        "int": -(2**62) + i * 977,
        "str_int": 10**30 + i,
        "str_float": i / 3.0,
        "str_decimal": Decimal("1.10") + i,
        "ndarray": rng.integers(-1000, 1000, tuple(rng.integers(1, 5, 1 + i % 3)), dtype=np.int32),
        "ndarray:float32": rng.random(tuple(rng.integers(1, 300, 1 + i % 2)), dtype=np.float32),
        "ndarray:uint16:8": rng.integers(0, 65535, 8, dtype=np.uint16),
        "ndarray:int64:2,3": rng.integers(-(2**40), 2**40, (2, 3), dtype=np.int64),
        "pil": image(i, mode="L" if i % 2 else "RGB"),
        "jpeg": image(i),
        "png": image(i, mode="L" if i % 2 else "RGB"),
        "jpeg_array": [jpeg_bytes(i), jpeg_bytes(i + 1)],
        "jpegarray": [jpeg_bytes(i + 2)],
        "list[pil]": [image(i), image(i + 1, mode="L")],
        "list[jpeg]": [image(i)] * (1 + i % 2),
        "list[png]": [image(i + 3)],
        "json": {"a": i, "b": [1, 2.5, "x"], "c": None},
        "pkl": {"tuple": (i, "y"), "set": {1, 2}},
    }
    return table[encoding]


def sample_for(columns: dict[str, str], i: int) -> dict[str, Any]:
    return {name: value_for(encoding, i) for name, encoding in columns.items()}


def normalize(value: Any) -> Any:
    """A comparable form of a decoded value."""
    if isinstance(value, Image.Image):
        return ("image", value.mode, value.size, np.asarray(value).tobytes())
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, np.generic):
        return ("scalar", value.dtype.str, value.tobytes())
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    return value


def expected_after_roundtrip(encoding: str, value: Any) -> Any:
    """What decoding should give back: lossy JPEG compares against a decode of its own bytes."""
    if encoding == "jpeg":
        out = BytesIO()
        value.save(out, format="JPEG")
        return normalize(Image.open(BytesIO(out.getvalue())))
    if encoding in ("jpeg_array", "jpegarray"):
        return [normalize(Image.open(BytesIO(b))) for b in value]
    if encoding == "list[jpeg]":
        return [expected_after_roundtrip("jpeg", v) for v in value]
    return normalize(value)
