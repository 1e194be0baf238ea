"""Never a silent hang (issue #11, guarantees 3 and 5): every wait of the node cache has a
deadline and its error names the rank, worker, shard and what it waited for; a cache_limit
too small for the node's readers fails when the epoch starts, with the number to use."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from torch.utils.data import DataLoader

from streaming_lightning import MDSWriter
from streaming_lightning.dataset import BatchesLoader, StreamingDataset
from streaming_lightning.dataset import cache as cache_module
from streaming_lightning.dataset.cache import ShardCache, ShardRef
from streaming_lightning.errors import ConfigError, StorageError
from streaming_lightning.storage import registry
from tests.dataset.test_streaming_dataset import hold_flock, make, xs
from tests.fixtures.fault_proxy import FaultProxy
from tests.fixtures.s3_server import S3Server


def _sized(path: Path, shards: int = 6) -> tuple[str, int]:
    """A dataset of ``shards`` uncompressed shards of ~10 KB; returns (path, largest bytes)."""
    with MDSWriter(out=str(path), columns={"b": "bytes", "x": "int"}, size_limit=10_000) as w:
        for i in range(shards * 9):
            w.write({"b": bytes(1000), "x": i})
    largest = max(f.stat().st_size for f in path.iterdir() if f.suffix == ".mds")
    return str(path), largest


def test_cache_limit_below_what_the_node_needs_fails_at_epoch_start(tmp_path: Path) -> None:
    data, largest = _sized(tmp_path / "data")

    def dataset(limit: int, name: str) -> StreamingDataset:
        return StreamingDataset(
            remote=data, local=str(tmp_path / name), cache_limit=limit, batch_size=3
        )

    # A plain DataLoader: the 2 workers read, each holding a shard while fetching the next.
    with pytest.raises(Exception, match=rf"at least {2 * largest}\b") as error:
        next(iter(DataLoader(dataset(largest * 3 // 2, "c1"), batch_size=3, num_workers=2)))
    assert re.search(r"rank 0/1 worker \d/2", str(error.value)), str(error.value)
    assert "(2 loader workers)" in str(error.value)
    # Batch plans: the main process reads the samples the 2 workers plan, 3 readers in all.
    with pytest.raises(Exception, match=rf"at least {3 * largest}\b") as error:
        next(iter(BatchesLoader(dataset(2 * largest, "c2"), num_workers=2)))
    assert "2 loader workers + the main process" in str(error.value)
    # Without workers only this process reads: one and a half shards are enough.
    assert sorted(xs(dataset(largest * 3 // 2, "c3"))) == list(range(54))
    got = [
        int(x)
        for batch in BatchesLoader(dataset(3 * largest, "c4"), num_workers=2)
        for x in batch["x"]
    ]
    assert sorted(got) == list(range(54))


def test_local_only_data_needs_no_cache_room(tmp_path: Path) -> None:
    data, largest = _sized(tmp_path / "data")
    ds = StreamingDataset(local=data, cache_limit=largest, batch_size=3)
    got = [int(x) for batch in DataLoader(ds, batch_size=3, num_workers=2) for x in batch["x"]]
    assert sorted(got) == list(range(54)), "local data is never evicted, so never counted"


def test_stalled_server_fails_within_the_deadline_naming_rank_worker_and_shard(
    s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3.new_bucket()
    with MDSWriter(out=f"s3://{bucket}/ds", columns={"x": "int"}, size_limit=400) as writer:
        for i in range(200):
            writer.write({"x": i})
    ds = StreamingDataset(
        remote=f"s3://{bucket}/ds",
        local=str(tmp_path / "cache"),
        download_timeout=1,
        download_retry=1,
    )  # the index comes through the healthy server; every shard request then stalls
    proxy = FaultProxy(
        int(s3.endpoint.rsplit(":", 1)[1]), fault_rate=1.0, faults=("stall",), stall_limit_s=60
    )
    try:
        monkeypatch.setenv("S3_ENDPOINT_URL", proxy.url)
        registry.reset_backends()
        started = time.monotonic()
        with pytest.raises(StorageError) as error:
            xs(ds)
        waited = time.monotonic() - started
    finally:
        proxy.close()
        registry.reset_backends()
    message = str(error.value)
    print(f"stalled server detected after {waited:.1f} s (download_timeout=1, retry=1)")
    assert waited < 30, f"took {waited:.1f} s to give up on a stalled server"
    assert "rank 0/1 worker 0/1" in message and "fetching shard shard.0000" in message, message
    assert proxy.counts["stall"] >= 2, proxy.counts  # it did retry once before failing


def test_a_stuck_decompressor_elsewhere_is_a_named_error_not_a_hang(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make(tmp_path / "a", 50)  # zstd shards: reading one means decompressing it
    cache = tmp_path / "cache"
    ds = StreamingDataset(remote=data, local=str(cache))
    lock = cache / ".locks" / "decompress.lock"
    os.makedirs(lock.parent, exist_ok=True)
    holder = hold_flock(str(lock), "LOCK_EX")
    monkeypatch.setattr(cache_module, "DECOMPRESS_DEADLINE_S", 1.0)
    try:
        started = time.monotonic()
        with pytest.raises(StorageError, match=r"rank 0/1 worker 0/1: waited 1 s .*decompress"):
            ds[0]
        assert time.monotonic() - started < 10
    finally:
        holder.kill()
        holder.wait(10)
    assert ds[0]["x"] == 0, "once the holder is gone the shard is prepared normally"


def test_eviction_lock_held_elsewhere_is_a_named_error_not_a_hang(tmp_path: Path) -> None:
    data, largest = _sized(tmp_path / "data")
    cache_dir = tmp_path / "cache"
    ds = StreamingDataset(remote=data, local=str(cache_dir), cache_limit=4 * largest)
    cache = ShardCache(ds.streams, 4 * largest, who="rank 3/4 worker 1/2")
    lock = cache_dir / ".locks" / "evict.lock"
    os.makedirs(lock.parent, exist_ok=True)
    holder = hold_flock(str(lock), "LOCK_EX")
    try:
        started = time.monotonic()
        with pytest.raises(StorageError, match=r"rank 3/4 worker 1/2: waited 1 s .*eviction"):
            cache._make_room(largest, keep=ShardRef(0, 0), deadline_s=1.0)
        assert time.monotonic() - started < 10
    finally:
        holder.kill()
        holder.wait(10)


def test_a_cache_limit_below_one_shard_is_refused_at_construction(tmp_path: Path) -> None:
    data, largest = _sized(tmp_path / "data")
    with pytest.raises(ConfigError, match="smaller than the largest shard"):
        StreamingDataset(remote=data, local=str(tmp_path / "c"), cache_limit=largest - 1)


def test_a_rank_killed_mid_download_does_not_stall_the_others(
    s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rank 1 dies while it holds the download of a shard rank 0 also needs: rank 0 takes the
    download over as soon as the kernel drops the dead rank's lock — no wait for its deadline,
    no stale lock or temp file to clean by hand."""
    bucket = s3.new_bucket()
    with MDSWriter(out=f"s3://{bucket}/ds", columns={"b": "bytes"}, size_limit=1 << 21) as w:
        for _ in range(8):
            w.write({"b": os.urandom(200_000)})  # one ~1.6 MB shard
    remote, cache = f"s3://{bucket}/ds", tmp_path / "cache"
    StreamingDataset(remote=remote, local=str(cache))  # index in place for both ranks
    proxy = FaultProxy(int(s3.endpoint.rsplit(":", 1)[1]), bytes_per_s=256 << 10)  # ~6 s
    try:
        monkeypatch.setenv("S3_ENDPOINT_URL", proxy.url)
        registry.reset_backends()
        code = (
            "from streaming_lightning.dataset import StreamingDataset; import sys; "
            "StreamingDataset(remote=sys.argv[1], local=sys.argv[2], download_timeout=30)[0]"
        )
        env = {**os.environ, "RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}
        env.update(LOCAL_WORLD_SIZE="2", PYTHONPATH=str(Path(__file__).resolve().parents[2]))
        rank1 = subprocess.Popen([sys.executable, "-c", code, remote, str(cache)], env=env)
        deadline = time.monotonic() + 60
        while not any(".tmp." in p.name for p in cache.iterdir()):  # its download has begun
            assert rank1.poll() is None and time.monotonic() < deadline, "rank 1 never started"
            time.sleep(0.05)
        rank1.send_signal(signal.SIGKILL)
        rank1.wait(10)
        started = time.monotonic()
        ds = StreamingDataset(remote=remote, local=str(cache), download_timeout=30)
        assert len(ds[7]["b"]) == 200_000
        took = time.monotonic() - started
    finally:
        proxy.close()
        registry.reset_backends()
    print(f"rank 0 had the shard {took:.1f} s after rank 1 was killed mid-download")
    # The dead rank's lock budget would be 30 s x 3 attempts; the download itself takes ~6 s.
    assert took < 25, f"rank 0 waited {took:.1f} s"
    leftovers = [p.name for p in cache.iterdir() if ".tmp." in p.name]
    assert not leftovers, f"the dead rank's temp file is still there: {leftovers}"


def test_leaving_a_loop_early_does_not_wait_for_slow_downloads(
    s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Breaking out of an epoch while prefetches crawl over a slow link returns at once (in
    flight downloads get CLOSE_WAIT_S, then finish in the background); it used to wait for
    every one of them."""
    bucket = s3.new_bucket()
    with MDSWriter(out=f"s3://{bucket}/ds", columns={"b": "bytes"}, size_limit=1 << 20) as w:
        for _ in range(3000):
            w.write({"b": os.urandom(1000)})  # 3 shards of ~1,000 samples, ~1 MB each
    remote = f"s3://{bucket}/ds"
    # The index and the first shard come through the fast path: the epoch starts at once.
    assert len(StreamingDataset(remote=remote, local=str(tmp_path / "cache"))[0]["b"]) == 1000
    proxy = FaultProxy(int(s3.endpoint.rsplit(":", 1)[1]), bytes_per_s=128 << 10)  # ~8 s/shard
    try:
        monkeypatch.setenv("S3_ENDPOINT_URL", proxy.url)
        registry.reset_backends()
        ds = StreamingDataset(remote=remote, local=str(tmp_path / "cache"), download_timeout=60)
        iterator = iter(ds)
        started = time.monotonic()
        for _ in range(800):  # from the cached first shard, while the second one downloads
            next(iterator)
        time.sleep(0.5)
        first = time.monotonic() - started
        started = time.monotonic()
        iterator.close()
        closed = time.monotonic() - started
    finally:
        proxy.close()
        registry.reset_backends()
    print(f"800 samples after {first:.1f} s; closing took {closed:.1f} s")
    assert closed < 5, f"closing the iterator waited {closed:.1f} s for downloads"
