"""MDS byte-compatibility with mosaicml-streaming 0.13.0, in both directions.

For each compression, one dataset holds a column of every encoding and records every hash, so
every encoding x compression x hash combination is written by both libraries and read by the
other. Index entries must be equal field for field and shard bytes identical.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from streaming_lightning import LocalDataset, MDSWriter
from streaming_lightning.format.hashing import get_hashes
from tests.compat.peer import peer_read_all, raw_bytes, streaming
from tests.samples import ALL_COLUMNS, expected_after_roundtrip, normalize, sample_for

PeerMDSWriter = streaming.MDSWriter
peer_get_hashes = streaming.base.hashing.get_hashes

COMPRESSIONS = [None, "zstd", "zstd:7", "gz", "gz:1", "bz2", "bz2:1", "br", "br:1", "snappy"]
NUM_SAMPLES = 14


def all_hashes() -> list[str]:
    assert get_hashes() == peer_get_hashes(), "hash registries differ"
    return sorted(get_hashes())


def write_both(
    tmp_path: Path, columns: dict[str, str], samples: list[dict[str, Any]], **kwargs: Any
) -> tuple[str, str]:
    ours, theirs = str(tmp_path / "ours"), str(tmp_path / "theirs")
    with MDSWriter(out=ours, columns=columns, **kwargs) as writer:
        for sample in samples:
            writer.write(sample)
    with PeerMDSWriter(out=theirs, columns=columns, **kwargs) as writer:
        for sample in samples:
            writer.write(sample)
    return ours, theirs


def load(dirname: str) -> dict[str, Any]:
    with open(os.path.join(dirname, "index.json")) as file:
        return json.load(file)


def assert_same_dataset(ours: str, theirs: str) -> None:
    """Indexes equal field for field; raw shard bytes identical; compressed bytes identical
    except gzip, whose reference output embeds the current time in its header."""
    our_index, peer_index = load(ours), load(theirs)
    assert len(our_index["shards"]) == len(peer_index["shards"])
    for mine, peer in zip(our_index["shards"], peer_index["shards"]):
        compression = mine["compression"]
        for role in ("data", "meta"):
            if f"raw_{role}" not in peer:
                continue
            stored = f"zip_{role}" if compression else f"raw_{role}"
            assert raw_bytes(ours, mine[stored], compression) == raw_bytes(
                theirs, peer[stored], compression
            )
            if compression and not compression.startswith("gz"):
                assert raw_bytes(ours, mine[stored], None) == raw_bytes(theirs, peer[stored], None)
        if compression and compression.startswith("gz"):
            for key in ("zip_data", "zip_meta"):
                if peer.get(key):
                    assert mine[key]["bytes"] == peer[key]["bytes"]
                    mine[key]["hashes"] = peer[key]["hashes"] = None
        assert mine == peer
    with (
        open(os.path.join(ours, "index.json"), "rb") as a,
        open(os.path.join(theirs, "index.json"), "rb") as b,
    ):
        if not any((s["compression"] or "").startswith("gz") for s in peer_index["shards"]):
            assert a.read() == b.read(), "index.json bytes differ"


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_every_encoding_compression_and_hash_both_ways(
    tmp_path: Path, compression: str | None
) -> None:
    samples = [sample_for(ALL_COLUMNS, i) for i in range(NUM_SAMPLES)]
    ours, theirs = write_both(
        tmp_path,
        ALL_COLUMNS,
        samples,
        compression=compression,
        hashes=all_hashes(),
        size_limit=12_000,
    )
    assert len(load(ours)["shards"]) > 1
    assert_same_dataset(ours, theirs)

    expected = [
        {n: expected_after_roundtrip(e, s[n]) for n, e in ALL_COLUMNS.items()} for s in samples
    ]
    # Ours -> reference reader.
    assert [normalize(s) for s in peer_read_all(ours)] == expected
    # Reference -> our reader, checking two hash families on the way.
    for algo in ("sha3_256", "xxh3_128"):
        ds = LocalDataset(theirs, allow_unsafe_types=True, validate_hash=algo)
        assert [normalize(s) for s in ds] == expected


@pytest.mark.parametrize("encoding", sorted(set(ALL_COLUMNS.values())))
def test_each_encoding_alone(tmp_path: Path, encoding: str) -> None:
    columns = {"value": encoding}
    samples = [sample_for(columns, i) for i in range(6)]
    ours, theirs = write_both(tmp_path, columns, samples, hashes=["sha1"])
    assert_same_dataset(ours, theirs)
    expected = [{"value": expected_after_roundtrip(encoding, s["value"])} for s in samples]
    assert [normalize(s) for s in peer_read_all(ours)] == expected
    assert [normalize(s) for s in LocalDataset(theirs, allow_unsafe_types=True)] == expected


@pytest.mark.parametrize("size_limit", [300, 1 << 12, "1kb", None])
def test_identical_shard_boundaries(tmp_path: Path, size_limit: Any) -> None:
    columns = {"b": "bytes", "n": "int", "s": "str"}
    samples = [{"b": bytes(i % 97), "n": i, "s": "z" * (i % 13)} for i in range(400)]
    ours, theirs = write_both(tmp_path, columns, samples, size_limit=size_limit, compression="zstd")
    assert_same_dataset(ours, theirs)


def test_reference_streaming_dataset_reads_ours(tmp_path: Path) -> None:
    """The reference's full StreamingDataset path (its decompression, its iteration)."""
    columns = {"tokens": "ndarray:uint16:16", "label": "int", "text": "str"}
    samples = [sample_for({"tokens": "ndarray:uint16:8"}, i) for i in range(300)]
    rows = [
        {"tokens": s["tokens"].repeat(2), "label": i, "text": f"t{i}"}
        for i, s in enumerate(samples)
    ]
    ours = str(tmp_path / "ours")
    with MDSWriter(
        out=ours, columns=columns, compression="zstd", hashes=["sha1"], size_limit=2000
    ) as writer:
        for row in rows:
            writer.write(row)
    streaming.base.util.clean_stale_shared_memory()
    dataset = streaming.StreamingDataset(
        local=ours, batch_size=1, shuffle=False, validate_hash="sha1"
    )
    got = sorted((dataset[i] for i in range(len(dataset))), key=lambda s: s["label"])
    assert len(got) == 300
    assert [normalize(s) for s in got] == [normalize(r) for r in rows]
