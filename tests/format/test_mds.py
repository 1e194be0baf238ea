from __future__ import annotations

import json
import os
import struct

import numpy as np
import pytest

from streaming_lightning import LocalDataset, MDSWriter
from streaming_lightning.errors import ConfigError, EncodingError
from streaming_lightning.format import OutputExistsError
from streaming_lightning.format.compression import decompress
from streaming_lightning.format.hashing import hash_bytes
from streaming_lightning.format.index import load_index
from tests.samples import ALL_COLUMNS, expected_after_roundtrip, normalize, sample_for


def write(out, columns, samples, **kwargs):  # type: ignore[no-untyped-def]
    with MDSWriter(
        out=out if isinstance(out, tuple) else str(out), columns=columns, **kwargs
    ) as writer:
        for sample in samples:
            writer.write(sample)
    return writer


@pytest.mark.parametrize("compression", [None, "zstd", "gz:1", "br:1", "bz2", "snappy"])
def test_all_encodings_roundtrip_through_shards(tmp_path, compression) -> None:  # type: ignore[no-untyped-def]
    samples = [sample_for(ALL_COLUMNS, i) for i in range(12)]
    write(
        tmp_path / "ds",
        ALL_COLUMNS,
        samples,
        compression=compression,
        hashes=["sha1", "xxh64"],
        size_limit=20_000,
    )
    ds = LocalDataset(str(tmp_path / "ds"), allow_unsafe_types=True, validate_hash="sha1")
    assert len(ds) == 12
    assert len(ds.shards) > 1, "size_limit should have split the data"
    for i, sample in enumerate(samples):
        got = ds[i]
        for name, encoding in ALL_COLUMNS.items():
            assert normalize(got[name]) == expected_after_roundtrip(encoding, sample[name]), (
                i,
                name,
            )
    assert [normalize(s) for s in ds] == [normalize(ds[i]) for i in range(12)]


def test_shard_layout_matches_the_spec(tmp_path) -> None:  # type: ignore[no-untyped-def]
    columns = {"tokens": "ndarray:uint16:4", "label": "int", "text": "str"}
    samples = [
        {"tokens": np.arange(4, dtype=np.uint16) + i, "label": i, "text": "x" * i} for i in range(3)
    ]
    write(tmp_path / "ds", columns, samples, hashes=["sha1"])
    (shard,) = load_index(str(tmp_path / "ds" / "index.json"))
    assert shard["column_names"] == ["label", "text", "tokens"]  # sorted by name
    assert shard["column_sizes"] == [8, None, 8]
    data = (tmp_path / "ds" / "shard.00000.mds").read_bytes()
    config = json.dumps(
        {k: shard[k] for k in shard if k not in ("samples", "raw_data", "zip_data")}, sort_keys=True
    ).encode()
    n = struct.unpack_from("<I", data)[0]
    offsets = struct.unpack_from(f"<{n + 1}I", data, 4)
    assert n == 3 and offsets[0] == 4 + 4 * 4 + len(config) and offsets[-1] == len(data)
    assert data[16 + 4 : offsets[0]] == config
    # Sample 2: uint32 size of the only variable column, then label, text, tokens.
    expected = (
        struct.pack("<I", 2)
        + struct.pack("<q", 2)
        + b"xx"
        + (np.arange(4, dtype=np.uint16) + 2).tobytes()
    )
    assert data[offsets[2] : offsets[3]] == expected
    assert shard["raw_data"] == {
        "basename": "shard.00000.mds",
        "bytes": len(data),
        "hashes": {"sha1": hash_bytes("sha1", data)},
    }
    assert shard["zip_data"] is None


def test_compressed_shard_hashes_cover_both_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    write(
        tmp_path / "ds",
        {"x": "int"},
        [{"x": i} for i in range(50)],
        compression="zstd:7",
        hashes=["md5", "xxh3_64"],
    )
    (shard,) = load_index(str(tmp_path / "ds" / "index.json"))
    packed = (tmp_path / "ds" / "shard.00000.mds.zstd").read_bytes()
    raw = decompress("zstd", packed)
    assert shard["zip_data"]["hashes"]["md5"] == hash_bytes("md5", packed)
    assert shard["raw_data"]["hashes"]["xxh3_64"] == hash_bytes("xxh3_64", raw)
    assert shard["raw_data"]["bytes"] == len(raw) and shard["compression"] == "zstd:7"
    assert not (tmp_path / "ds" / "shard.00000.mds").exists()


def test_size_limit_rolls_over_like_the_reference(tmp_path) -> None:  # type: ignore[no-untyped-def]
    writer = write(tmp_path / "ds", {"b": "bytes"}, [{"b": b"x" * 100}] * 40, size_limit=1000)
    shards = load_index(str(tmp_path / "ds" / "index.json"))
    per_shard_overhead = 8 + len(writer.config_data)
    capacity = (1000 - per_shard_overhead) // (100 + 4 + 4)
    assert [s["samples"] for s in shards[:-1]] == [capacity] * (len(shards) - 1)
    assert sum(s["samples"] for s in shards) == 40
    assert all(s["raw_data"]["bytes"] <= 1000 for s in shards)


def test_oversized_sample_gets_its_own_shard_not_an_empty_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    write(tmp_path / "ds", {"b": "bytes"}, [{"b": b"y" * 5000}, {"b": b"z"}], size_limit=1000)
    assert [s["samples"] for s in load_index(str(tmp_path / "ds" / "index.json"))] == [1, 1]


def test_size_limit_strings_and_none(tmp_path) -> None:  # type: ignore[no-untyped-def]
    write(tmp_path / "a", {"x": "int"}, [{"x": 1}], size_limit="1kb")
    assert load_index(str(tmp_path / "a" / "index.json"))[0]["size_limit"] == 1024
    write(tmp_path / "b", {"x": "int"}, [{"x": i} for i in range(1000)], size_limit=None)
    assert len(load_index(str(tmp_path / "b" / "index.json"))) == 1


def test_existing_output_is_refused_unless_exist_ok(tmp_path) -> None:  # type: ignore[no-untyped-def]
    write(tmp_path / "ds", {"x": "int"}, [{"x": 1}])
    with pytest.raises(OutputExistsError, match="not empty"):
        MDSWriter(out=str(tmp_path / "ds"), columns={"x": "int"})
    write(tmp_path / "ds", {"x": "int"}, [{"x": 5}, {"x": 6}], exist_ok=True)
    assert [s["x"] for s in LocalDataset(str(tmp_path / "ds"))] == [5, 6]


def test_empty_dataset_writes_an_empty_index(tmp_path) -> None:  # type: ignore[no-untyped-def]
    write(tmp_path / "ds", {"x": "int"}, [])
    assert load_index(str(tmp_path / "ds" / "index.json")) == []
    assert len(LocalDataset(str(tmp_path / "ds"))) == 0


def test_finish_is_explicit_and_idempotent(tmp_path) -> None:  # type: ignore[no-untyped-def]
    writer = MDSWriter(
        out=str(tmp_path / "ds"), columns={"x": "int"}, progress_bar=True, max_workers=1
    )
    writer.write({"x": 3})
    assert not (tmp_path / "ds" / "index.json").exists()
    writer.finish()
    writer.finish()
    assert (tmp_path / "ds" / "index.json").exists()
    with pytest.raises(Exception, match="finished"):
        writer.write({"x": 4})


def test_local_out_forms(tmp_path) -> None:  # type: ignore[no-untyped-def]
    write(f"file://{tmp_path}/a", {"x": "int"}, [{"x": 1}])
    assert (tmp_path / "a" / "index.json").exists()
    with pytest.raises(ConfigError, match="scheme 'ftp'"):
        MDSWriter(out="ftp://host/path", columns={"x": "int"})
    with pytest.raises(ConfigError, match="scheme 'ftp'"):
        MDSWriter(out=(str(tmp_path / "b"), "ftp://host/path"), columns={"x": "int"})
    assert not (tmp_path / "b").exists(), "nothing is created when arguments are refused"


def test_local_to_local_remote_upload(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A remote that is a local path (NFS, a mounted bucket) goes through the same uploader."""
    remote = tmp_path / "remote"
    write(
        (str(tmp_path / "stage"), str(remote)),
        {"x": "int"},
        [{"x": i} for i in range(500)],
        size_limit=1000,
    )
    assert not (tmp_path / "stage").exists(), "keep_local=False removes the staging directory"
    assert [s["x"] for s in LocalDataset(str(remote))] == list(range(500))
    with pytest.raises(OutputExistsError, match="already exists"):
        MDSWriter(out=(str(tmp_path / "stage2"), str(remote)), columns={"x": "int"})
    write(
        (str(tmp_path / "stage3"), str(remote)),
        {"x": "int"},
        [{"x": 7}],
        keep_local=True,
        exist_ok=True,
    )
    assert [s["x"] for s in LocalDataset(str(tmp_path / "stage3"))] == [7]
    assert [s["x"] for s in LocalDataset(str(remote))] == [7]


def test_invalid_arguments_touch_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "precious").write_text("data")
    for kwargs in [
        dict(columns={"x": "bogus"}),
        dict(columns={"x": "int"}, compression="lz4"),
        dict(columns={"x": "int"}, hashes=["nope"]),
        dict(columns={"x": "int"}, size_limit=1 << 32),
    ]:
        with pytest.raises((EncodingError, ConfigError, ValueError)):
            MDSWriter(out=str(tmp_path / "keep"), exist_ok=True, **kwargs)  # type: ignore[arg-type]
    assert (tmp_path / "keep" / "precious").read_text() == "data"


def test_many_shards_written_in_order_by_threads(tmp_path) -> None:  # type: ignore[no-untyped-def]
    n = 3000
    write(
        tmp_path / "ds",
        {"x": "int", "s": "str"},
        ({"x": i, "s": str(i)} for i in range(n)),
        size_limit=2000,
        compression="zstd",
        max_workers=4,
    )
    ds = LocalDataset(str(tmp_path / "ds"))
    assert len(ds.shards) > 20
    assert [s["x"] for s in ds] == list(range(n))
    assert sorted(os.listdir(tmp_path / "ds")) == sorted(
        ["index.json"]
        + [f"shard.{i:05}.mds.zstd" for i in range(len(ds.shards))]
        + [f"shard.{i:05}.mds" for i in range(len(ds.shards))]
    )
