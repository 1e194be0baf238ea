"""Cold start: while shards download, the first samples come by byte range (S3 on loopback,
through a slow link), and every sample is still the stored one."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streaming_lightning import MDSWriter, StreamingDataset
from streaming_lightning.dataset.cache import ShardRef
from streaming_lightning.dataset.ranged import MIN_MEAN_SAMPLE, RangedReads, _coalesce
from streaming_lightning.dataset.stream import Stream
from streaming_lightning.errors import CorruptDataError
from streaming_lightning.storage import registry
from tests.fixtures.fault_proxy import FaultProxy
from tests.fixtures.s3_server import S3Server


def _write(path: Path, n: int, mean: int, compression: str | None = None) -> dict[int, bytes]:
    rng = np.random.default_rng(3)
    images = {i: rng.bytes(int(rng.integers(mean // 2, mean * 3 // 2))) for i in range(n)}
    with MDSWriter(
        out=str(path),
        columns={"image": "bytes", "label": "int"},
        size_limit=1 << 20,
        compression=compression,
    ) as writer:
        for i, image in images.items():
            writer.write({"image": image, "label": i})
    return images


def _upload(s3: S3Server, local: Path) -> str:
    bucket = s3.new_bucket()
    client = s3.client()
    for file in local.iterdir():
        client.upload_file(str(file), bucket, f"ds/{file.name}")
    return f"s3://{bucket}/ds"


@pytest.fixture
def slow_s3(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The same S3 server behind a 1 MB/s-per-connection link: a 1 MB shard takes ~1 s."""
    port = int(s3.endpoint.rsplit(":", 1)[1])
    proxy = FaultProxy(port, bytes_per_s=1 << 20)
    monkeypatch.setenv("S3_ENDPOINT_URL", proxy.url)
    registry.reset_backends()
    yield proxy
    proxy.close()
    registry.reset_backends()


def test_first_samples_arrive_by_range_before_any_shard(
    s3: S3Server, slow_s3: FaultProxy, tmp_path: Path
) -> None:
    images = _write(tmp_path / "src", 160, mean=32 << 10)  # ~5 MB in ~5 shards
    remote = _upload(s3, tmp_path / "src")
    cache = tmp_path / "cache"
    dataset = StreamingDataset(
        remote=remote, local=str(cache), shuffle=True, batch_size=16, ranged_reads=True
    )
    started = time.monotonic()
    iterator = iter(dataset)
    first = [next(iterator) for _ in range(16)]
    first_batch_s = time.monotonic() - started
    # A global shuffle's first batch touches every shard; waiting for the ~1 MB ones would
    # take ~1 s each through this link (4 prefetch threads for 5 of them: >= 2 s).
    touched = set(dataset.locate(np.array([s["label"] for s in first]))[0].tolist())
    landed = [p for p in cache.glob("*.mds") if p.stat().st_size > 500_000]
    assert len(touched) >= 3 and not landed, "the first batch waited for a whole shard"
    # Whole shards would take >= 2 s; by range it takes ~0.3 s (1.8: slack for a busy machine).
    assert first_batch_s < 1.8, first_batch_s
    rest = list(iterator)
    samples = first + rest
    assert len({s["label"] for s in samples}) == 160
    assert all(s["image"] == images[s["label"]] for s in samples)
    # Downloads that landed meanwhile are whole (the rest were cancelled at the epoch's end).
    for path in cache.glob("*.mds"):
        assert path.read_bytes() == (tmp_path / "src" / path.name).read_bytes()


def test_ranged_reads_are_opt_in(s3: S3Server, slow_s3: FaultProxy, tmp_path: Path) -> None:
    """Without ranged_reads=True the first batch waits for the shards (whose download
    through this link takes seconds), and reads them locally."""
    _write(tmp_path / "src", 64, mean=32 << 10)
    remote = _upload(s3, tmp_path / "src")
    dataset = StreamingDataset(remote=remote, local=str(tmp_path / "c"), shuffle=True)
    iterator = iter(dataset)
    next(iterator)
    assert len(list((tmp_path / "c").glob("*.mds"))) >= 1


def test_no_ranges_for_compressed_or_hash_checked_or_small_samples(
    s3: S3Server, tmp_path: Path
) -> None:
    _write(tmp_path / "zstd", 40, mean=32 << 10, compression="zstd")
    _write(tmp_path / "small", 40, mean=MIN_MEAN_SAMPLE // 4)
    _write(tmp_path / "big", 40, mean=32 << 10)
    cases = {"zstd": (None, False), "small": (None, False), "big": ("sha1", False)}
    cases["plain"] = (None, True)
    for name, (validate_hash, expected) in cases.items():
        remote = _upload(s3, tmp_path / ("big" if name == "plain" else name))
        stream = Stream(
            remote=remote, local=str(tmp_path / f"c-{name}"), validate_hash=validate_hash
        )
        stream.load(allow_unsafe_types=False)
        assert RangedReads([stream]).covers(ShardRef(0, 0), stream.shards[0]) is expected, name
    local_only = Stream(local=str(tmp_path / "big"))
    local_only.load(allow_unsafe_types=False)
    assert not RangedReads([local_only]).covers(ShardRef(0, 0), local_only.shards[0])


def test_ranged_bytes_equal_stored_and_bad_tables_are_caught(s3: S3Server, tmp_path: Path) -> None:
    images = _write(tmp_path / "src", 40, mean=32 << 10)
    remote = _upload(s3, tmp_path / "src")
    stream = Stream(remote=remote, local=str(tmp_path / "cache"))
    stream.load(allow_unsafe_types=False)
    ranged = RangedReads([stream])
    reader = stream.shards[0]
    wanted = [(ShardRef(0, 0), reader, i) for i in (3, 0, 1, 2, 3, reader.samples - 1)]
    got = [reader.decode_sample(data) for data in ranged.read(wanted)]
    assert [s["label"] for s in got] == [3, 0, 1, 2, 3, reader.samples - 1]
    assert all(s["image"] == images[s["label"]] for s in got)
    # A remote table that disagrees with index.json is corrupt data, named.
    ranged._tables[ShardRef(0, 0)] = b"\x05\x00\x00\x00" + bytes(24)
    with pytest.raises(CorruptDataError, match="shard"):
        ranged.read(wanted[:1])
    ranged.close()


def test_coalesce_joins_touching_spans_only() -> None:
    spans = np.array([[30, 40], [10, 20], [20, 30], [50, 60], [10, 20]], np.int64)
    groups = _coalesce(spans, [0, 1, 2, 3, 4])
    # sorted by start (stable): the repeat of [10,20] starts a new request, which the
    # touching [20,30] and [30,40] then join; [50,60] touches nothing
    assert [(a, b) for a, b, _ in groups] == [(10, 20), (10, 40), (50, 60)]
    members = {pos: (a, b) for _, _, m in groups for pos, a, b in m}
    assert members == {0: (30, 40), 1: (10, 20), 2: (20, 30), 3: (50, 60), 4: (10, 20)}
