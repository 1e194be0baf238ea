"""Every input from disk is untrusted: each bad input gets a clear error naming the file."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from streaming_lightning import LocalDataset, MDSWriter
from streaming_lightning.errors import (
    ConfigError,
    CorruptDataError,
    EncodingError,
    HashMismatchError,
    IndexFormatError,
    StreamingError,
    UnsafePathError,
    UnsafeTypeError,
)


@pytest.fixture
def dataset(tmp_path):  # type: ignore[no-untyped-def]
    out = tmp_path / "ds"
    with MDSWriter(
        out=str(out), columns={"x": "int", "t": "str"}, hashes=["sha1", "xxh64"], size_limit=400
    ) as w:
        for i in range(40):
            w.write({"x": i, "t": "text" * (i % 5)})
    return out


def _index(path):  # type: ignore[no-untyped-def]
    return json.loads((path / "index.json").read_text())


def _set_index(path, obj):  # type: ignore[no-untyped-def]
    (path / "index.json").write_text(json.dumps(obj))


def test_unknown_encoding_in_writer_and_index(dataset, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EncodingError, match="column 'y'.*'float128'"):
        MDSWriter(out=str(tmp_path / "o"), columns={"y": "float128"})
    obj = _index(dataset)
    obj["shards"][1]["column_encodings"][0] = "float128"
    _set_index(dataset, obj)
    with pytest.raises(EncodingError, match=r"index.json shard 1.*float128"):
        LocalDataset(str(dataset))


def test_wrong_size_for_fixed_column_and_missing_column(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with MDSWriter(out=str(tmp_path / "o"), columns={"x": "int", "a": "ndarray:uint8:4"}) as w:
        with pytest.raises(EncodingError, match="exactly 8 bytes"):
            w.write({"x": b"\x01\x02\x03", "a": np.zeros(4, np.uint8)})
        with pytest.raises(EncodingError, match="missing column 'a'"):
            w.write({"x": 1})
        with pytest.raises(EncodingError, match="expected shape"):
            w.write({"x": 1, "a": np.zeros(5, np.uint8)})
        w.write({"x": 1, "a": np.zeros(4, np.uint8)})
    assert len(LocalDataset(str(tmp_path / "o"))) == 1


def test_size_limit_too_large(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="2\\*\\*32"):
        MDSWriter(out=str(tmp_path / "o"), columns={"x": "int"}, size_limit=2**32)
    with pytest.raises(ConfigError):
        MDSWriter(out=str(tmp_path / "o"), columns={"x": "int"}, size_limit="5tb")


def test_truncated_shard_names_the_file(dataset) -> None:  # type: ignore[no-untyped-def]
    shard = dataset / "shard.00002.mds"
    shard.write_bytes(shard.read_bytes()[:-7])
    ds = LocalDataset(str(dataset))
    assert ds[0]["x"] == 0
    with pytest.raises(CorruptDataError, match="shard.00002.mds.*truncated"):
        ds[ds.shard_offsets[2]]


def test_corrupt_offset_table_names_the_file(dataset) -> None:  # type: ignore[no-untyped-def]
    shard = dataset / "shard.00001.mds"
    data = bytearray(shard.read_bytes())
    data[8:12] = (10**9).to_bytes(4, "little")
    shard.write_bytes(bytes(data))
    ds = LocalDataset(str(dataset))
    with pytest.raises(CorruptDataError, match="shard.00001.mds"):
        ds[int(ds.shard_offsets[1])]


def test_wrong_sample_count_in_shard_header(dataset) -> None:  # type: ignore[no-untyped-def]
    shard = dataset / "shard.00000.mds"
    data = bytearray(shard.read_bytes())
    data[0] += 1
    shard.write_bytes(bytes(data))
    with pytest.raises(CorruptDataError, match="shard.00000.mds.*index.json says"):
        LocalDataset(str(dataset))[0]


def test_flipped_byte_with_hashes_on(dataset) -> None:  # type: ignore[no-untyped-def]
    shard = dataset / "shard.00003.mds"
    data = bytearray(shard.read_bytes())
    data[-2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(HashMismatchError, match="shard.00003.mds: sha1"):
        LocalDataset(str(dataset), validate_hash="sha1")
    with pytest.raises(StreamingError, match="records only"):
        LocalDataset(str(dataset), validate_hash="md5")


def test_flipped_byte_in_compressed_shard(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "z"
    with MDSWriter(out=str(out), columns={"x": "int"}, compression="zstd", hashes=["xxh64"]) as w:
        for i in range(100):
            w.write({"x": i})
    packed = out / "shard.00000.mds.zstd"
    data = bytearray(packed.read_bytes())
    data[len(data) // 2] ^= 0x55
    packed.write_bytes(bytes(data))
    with pytest.raises(HashMismatchError, match="shard.00000.mds.zstd"):
        LocalDataset(str(out), validate_hash="xxh64")
    assert not (out / "shard.00000.mds").exists(), "a bad download is never decompressed"
    # zstd frames carry no checksum (same bytes as the reference), so a flipped byte is caught
    # by hashes; a truncated compressed file is caught even without them.
    packed.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(StreamingError, match="shard.00000.mds.zstd"):
        LocalDataset(str(out))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda obj: "not json {", "not valid JSON"),
        (lambda obj: [], "expected a JSON object"),
        (lambda obj: {"shards": obj["shards"]}, "unsupported index version"),
        (lambda obj: {"version": 2}, "'shards'"),
        (
            lambda obj: {
                **obj,
                "shards": [{k: v for k, v in obj["shards"][0].items() if k != "samples"}],
            },
            "missing required field 'samples'",
        ),
        (
            lambda obj: {**obj, "shards": [{**obj["shards"][0], "samples": "3"}]},
            "'samples' has the wrong type",
        ),
        (
            lambda obj: {**obj, "shards": [{**obj["shards"][0], "format": "parquet"}]},
            "unknown shard format 'parquet'",
        ),
        (
            lambda obj: {**obj, "shards": [{**obj["shards"][0], "compression": "lz4"}]},
            "unknown compression 'lz4'",
        ),
        (lambda obj: {**obj, "shards": [{**obj["shards"][0], "raw_data": None}]}, "raw_data"),
        (
            lambda obj: {**obj, "shards": [{**obj["shards"][0], "column_sizes": [8]}]},
            "differ in length",
        ),
        (
            lambda obj: {**obj, "shards": [{**obj["shards"][0], "column_sizes": [None, 4]}]},
            "has size 4, expected 8",
        ),
        (
            lambda obj: {**obj, "shards": [{**obj["shards"][0], "compression": "zstd"}]},
            "zip_data' is missing",
        ),
    ],
)
def test_bad_index_json(dataset, mutate, message) -> None:  # type: ignore[no-untyped-def]
    obj = mutate(_index(dataset))
    (dataset / "index.json").write_text(obj if isinstance(obj, str) else json.dumps(obj))
    with pytest.raises(IndexFormatError, match=message) as info:
        LocalDataset(str(dataset))
    assert str(dataset / "index.json") in str(info.value)


def test_missing_index(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(IndexFormatError, match="No index.json"):
        LocalDataset(str(tmp_path))


@pytest.mark.parametrize(
    "basename", ["../x.mds", "/etc/passwd", "a/../../x", "./shard", "~/x", "a\\..\\x", ""]
)
def test_basename_escaping_the_dataset_directory(dataset, basename) -> None:  # type: ignore[no-untyped-def]
    obj = _index(dataset)
    obj["shards"][0]["raw_data"]["basename"] = basename
    _set_index(dataset, obj)
    with pytest.raises((UnsafePathError, IndexFormatError), match="index.json"):
        LocalDataset(str(dataset))


def test_subdirectory_basenames_are_allowed(dataset) -> None:  # type: ignore[no-untyped-def]
    os.makedirs(dataset / "part")
    os.rename(dataset / "shard.00000.mds", dataset / "part" / "shard.00000.mds")
    obj = _index(dataset)
    obj["shards"][0]["raw_data"]["basename"] = "part/shard.00000.mds"
    _set_index(dataset, obj)
    assert LocalDataset(str(dataset))[0]["x"] == 0


def test_unknown_compression_in_writer(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="Unknown compression 'lzma'"):
        MDSWriter(out=str(tmp_path / "o"), columns={"x": "int"}, compression="lzma")


def test_pickle_refused_without_opt_in(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with MDSWriter(out=str(tmp_path / "p"), columns={"obj": "pkl", "x": "int"}) as w:
        w.write({"obj": {"a": 1}, "x": 1})
    with pytest.raises(UnsafeTypeError, match="column 'obj'.*allow_unsafe_types=True") as info:
        LocalDataset(str(tmp_path / "p"))
    assert "index.json" in str(info.value)
    assert LocalDataset(str(tmp_path / "p"), allow_unsafe_types=True)[0]["obj"] == {"a": 1}


def test_failing_writer_leaves_nothing_behind(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "o"
    with pytest.raises(RuntimeError, match="boom"):
        with MDSWriter(out=str(out), columns={"x": "int"}, size_limit=200, compression="zstd") as w:
            for i in range(100):
                w.write({"x": i})
            raise RuntimeError("boom")
    assert os.listdir(out) == []


def test_failing_sample_in_with_block_leaves_no_index(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "o"
    with pytest.raises(EncodingError):
        with MDSWriter(out=str(out), columns={"x": "int"}, size_limit=200) as w:
            for i in range(50):
                w.write({"x": i})
            w.write({"x": "not an int"})
    assert not (out / "index.json").exists()
    assert os.listdir(out) == []
