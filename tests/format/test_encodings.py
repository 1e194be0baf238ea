from __future__ import annotations

import struct

import numpy as np
import pytest

from streaming_lightning.errors import EncodingError
from streaming_lightning.format.encodings import (
    get_mds_encoded_size,
    get_mds_encodings,
    is_mds_encoding,
    is_mds_encoding_safe,
    mds_decode,
    mds_encode,
)
from tests.samples import ALL_COLUMNS, SCALARS, expected_after_roundtrip, normalize, value_for


@pytest.mark.parametrize("encoding", sorted(set(ALL_COLUMNS.values())))
def test_every_encoding_roundtrips(encoding: str) -> None:
    for i in range(4):
        value = value_for(encoding, i)
        data = mds_encode(encoding, value)
        size = get_mds_encoded_size(encoding)
        if size is not None:
            assert len(data) == size
        assert normalize(mds_decode(encoding, data)) == expected_after_roundtrip(encoding, value)


def test_registry_lists_every_peer_encoding() -> None:
    expected = {
        "bytes",
        "str",
        "int",
        "ndarray",
        *SCALARS,
        "str_int",
        "str_float",
        "str_decimal",
        "pil",
        "jpeg",
        "jpeg_array",
        "jpegarray",
        "png",
        "list[pil]",
        "list[jpeg]",
        "list[png]",
        "pkl",
        "json",
    }
    assert get_mds_encodings() == expected
    assert not is_mds_encoding_safe("pkl")
    assert all(is_mds_encoding_safe(e) for e in expected - {"pkl"})


def test_int_is_little_endian_int64() -> None:
    assert mds_encode("int", -2) == struct.pack("<q", -2)
    assert mds_decode("int", struct.pack("<q", 7)) == 7
    assert type(mds_decode("int", struct.pack("<q", 7))) is int


def test_ndarray_layouts() -> None:
    arr = np.arange(6, dtype=np.uint16).reshape(2, 3)
    # Dynamic dtype and shape: dtype code 16, then (ndim 2 << 2 | uint8 shape code 0), shape.
    assert mds_encode("ndarray", arr) == bytes([16, 8, 2, 3]) + arr.tobytes()
    assert mds_encode("ndarray:uint16", arr) == bytes([8, 2, 3]) + arr.tobytes()
    assert mds_encode("ndarray:uint16:2,3", arr) == arr.tobytes()
    big = np.zeros((300,), np.uint8)
    assert mds_encode("ndarray:uint8", big)[:3] == bytes([(1 << 2) | 1]) + struct.pack("<H", 300)
    assert get_mds_encoded_size("ndarray:uint16:2,3") == 12
    assert get_mds_encoded_size("ndarray:uint16") is None


def test_list_encoding_has_reserved_word_and_size_table() -> None:
    from tests.samples import jpeg_bytes

    items = [jpeg_bytes(1), jpeg_bytes(2)]
    data = mds_encode("jpeg_array", items)
    assert data[:12] == struct.pack("<III", 2, len(items[0]), len(items[1]))
    data = mds_encode("list[png]", [value_for("png", 0)])
    assert data[:8] == struct.pack("<II", 0, 1)


def test_bytes_pass_through_any_encoding() -> None:
    assert mds_encode("jpeg", b"raw-jpeg") == b"raw-jpeg"


@pytest.mark.parametrize(
    ("encoding", "value"),
    [
        ("int", "seven"),
        ("int", 2**64),
        ("uint8", 300),
        ("str", 5),
        ("ndarray:uint16", np.zeros(3, np.float32)),
        ("ndarray:uint16:4", np.zeros(3, np.uint16)),
        ("ndarray", np.zeros(0, np.uint8)),
        ("ndarray", np.array(3)),
        ("ndarray", np.zeros(2, bool)),
        ("json", {1, 2}),
        ("pil", "not-an-image"),
        ("jpeg_array", ["not-bytes"]),
    ],
)
def test_bad_values_raise_encoding_error(encoding: str, value: object) -> None:
    with pytest.raises(EncodingError):
        mds_encode(encoding, value)


@pytest.mark.parametrize(
    "encoding",
    ["nope", "ndarray:bool", "ndarray:uint8:0", "int:3", "ndarray:a:b:c", "ndarray:uint8:x"],
)
def test_unknown_or_malformed_encodings(encoding: str) -> None:
    assert not is_mds_encoding(encoding)
    with pytest.raises(EncodingError):
        mds_encode(encoding, 1)


@pytest.mark.parametrize(
    ("encoding", "data"),
    [
        ("int", b"\x01\x02"),
        ("ndarray", bytes([99, 4, 1, 0])),
        ("ndarray:uint16", bytes([4, 3]) + b"\x00\x00"),
        ("str", b"\xff\xfe"),
        ("json", b"{not json"),
        ("list[png]", b"\x00\x00\x00\x00\x05\x00\x00\x00"),
        ("png", b"not a png"),
        ("str_int", b"12a"),
    ],
)
def test_corrupt_values_raise_encoding_error(encoding: str, data: bytes) -> None:
    with pytest.raises(EncodingError):
        mds_decode(encoding, data)
