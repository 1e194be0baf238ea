from __future__ import annotations

import hashlib
import os

import pytest
import xxhash

from streaming_lightning.errors import CompressionError, ConfigError, HashError
from streaming_lightning.format.compression import (
    compress,
    compression_extension,
    decompress,
    get_compressions,
    is_compression,
)
from streaming_lightning.format.hashing import get_hashes, hash_bytes, hash_file, validate_hashes
from streaming_lightning.units import parse_bytes

DATA = os.urandom(5000) + b"abc" * 20000


@pytest.mark.parametrize(
    "name", ["br", "bz2", "gz", "snappy", "zstd", "zstd:1", "zstd:22", "gz:1", "br:0", "bz2:1"]
)
def test_codecs_roundtrip(name: str) -> None:
    packed = compress(name, DATA)
    assert len(packed) < len(DATA)
    assert decompress(name, packed) == DATA
    assert compression_extension(name) == name.split(":")[0]


def test_gzip_output_is_reproducible() -> None:
    assert compress("gz", DATA) == compress("gz", DATA)


def test_compression_names() -> None:
    names = get_compressions()
    assert {"br", "br:11", "bz2:9", "gz:0", "snappy", "zstd:22"} <= names
    assert "snappy:1" not in names and "zstd:0" not in names and "zstd:23" not in names
    for bad in ["lz4", "zstd:x", "snappy:3", "zstd:23", ""]:
        assert not is_compression(bad)
    with pytest.raises(CompressionError, match="Unknown compression 'lz4'"):
        compress("lz4", DATA)


def test_corrupt_compressed_bytes_name_the_source() -> None:
    with pytest.raises(CompressionError, match="shard.00000.mds.zstd"):
        decompress("zstd", b"garbage", source="shard.00000.mds.zstd")


def test_hashes_match_reference_implementations() -> None:
    assert hash_bytes("sha1", DATA) == hashlib.sha1(DATA).hexdigest()
    assert hash_bytes("sha3_256", DATA) == hashlib.sha3_256(DATA).hexdigest()
    assert hash_bytes("xxh64", DATA) == xxhash.xxh64(DATA).hexdigest()
    assert hash_bytes("xxh3_128", DATA) == xxhash.xxh3_128(DATA).hexdigest()
    required = {
        "md5",
        "sha1",
        "sha224",
        "sha256",
        "sha384",
        "sha512",
        "sha3_224",
        "sha3_256",
        "sha3_384",
        "sha3_512",
        "xxh32",
        "xxh64",
        "xxh128",
        "xxh3_64",
        "xxh3_128",
    }
    assert required <= get_hashes()
    assert not any(h.startswith("shake") for h in get_hashes())


def test_hash_file_streams(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "f"
    path.write_bytes(DATA)
    assert hash_file("sha256", str(path), chunk_size=1000) == hashlib.sha256(DATA).hexdigest()


def test_hash_names_validated() -> None:
    assert validate_hashes(["sha1", "xxh64"]) == ["sha1", "xxh64"]
    with pytest.raises(HashError, match="sorted"):
        validate_hashes(["xxh64", "sha1"])
    with pytest.raises(HashError, match="Unknown hash"):
        validate_hashes(["crc99"])


@pytest.mark.parametrize(
    ("text", "value"),
    [(100, 100), ("100", 100), ("64mb", 64 << 20), ("1.5kb", 1536), ("2GB", 2 << 30), ("12b", 12)],
)
def test_parse_bytes(text: object, value: int) -> None:
    assert parse_bytes(text) == value  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["lots", "12xb", True, None])
def test_parse_bytes_rejects(text: object) -> None:
    with pytest.raises(ConfigError):
        parse_bytes(text)  # type: ignore[arg-type]
