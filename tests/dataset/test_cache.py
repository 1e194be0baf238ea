"""ShardCache after a kill: temp files of downloads and decompressions a SIGKILL cut off are
removed by the next process that opens the cache, never those of a live writer."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from streaming_lightning.dataset import StreamingDataset
from streaming_lightning.dataset.cache import ShardCache, discard_stale_temps
from streaming_lightning.storage.transfer import lock_path_for
from tests.dataset.test_streaming_dataset import hold_flock, make, xs


def test_temps_of_killed_writers_are_removed_when_the_cache_opens(tmp_path: Path) -> None:
    data = make(tmp_path / "remote", 100)
    cache = tmp_path / "cache"
    dataset = StreamingDataset(remote=data, local=str(cache))
    assert xs(dataset) == list(range(100))  # every shard downloaded and decompressed
    # What killed processes leave: a shard download, a decompression, the index download.
    killed = [
        ".shard.00001.mds.zstd.tmp.4001.0a1b2c3d",
        ".shard.00002.mds.tmp.4002.deadbeef",
        ".index.json.tmp.4003.00ff00ff",
    ]
    # A download in progress elsewhere (its lock held), and files that are not this
    # dataset's (it has 3 shards).
    live = ".shard.00000.mds.zstd.tmp.4004.12345678"
    foreign = [".notes.txt.tmp.4005.abcdef01", ".shard.00009.mds.zstd.tmp.4006.abcdef02"]
    for name in [*killed, live, *foreign]:
        (cache / name).write_bytes(b"partial")
    holder = hold_flock(lock_path_for(str(cache / "shard.00000.mds.zstd")), "LOCK_EX")
    try:
        ShardCache(dataset.streams, None)  # what every worker does when it starts reading
        left = set(os.listdir(cache))
        assert not left & set(killed), left
        assert {live, *foreign} <= left
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
    assert discard_stale_temps(dataset.streams[0]) == 1  # the live writer is gone now
    assert xs(dataset) == list(range(100))


def test_nothing_is_removed_while_a_decompression_runs(tmp_path: Path) -> None:
    data = make(tmp_path / "remote", 100)
    cache = tmp_path / "cache"
    dataset = StreamingDataset(remote=data, local=str(cache))
    temp = cache / ".shard.00000.mds.tmp.4242.0badf00d"
    temp.write_bytes(b"being written")
    holder = hold_flock(str(cache / ".locks" / "decompress.lock"), "LOCK_EX")
    try:
        assert discard_stale_temps(dataset.streams[0]) == 0
        assert temp.exists()
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
    assert discard_stale_temps(dataset.streams[0]) == 1
    assert not temp.exists()


def test_a_read_only_dataset_directory_is_left_alone(tmp_path: Path) -> None:
    """No lock file is made (or fails to be made) where nothing needs removing."""
    data = Path(make(tmp_path / "ds", 100))
    StreamingDataset(local=str(data))
    ShardCache(StreamingDataset(local=str(data)).streams, None)
    assert not (data / ".locks").exists()


def test_the_index_temp_is_swept_when_every_shard_is_in_a_subfolder(tmp_path: Path) -> None:
    """A merged dataset names its shards ``part/shard...``: the cache root holds none of them,
    but a killed index download leaves its temp file there."""
    from streaming_lightning import merge_index

    root = tmp_path / "remote"
    make(root / "part0", 50)
    make(root / "part1", 50)
    merge_index(str(root))
    cache = tmp_path / "cache"
    dataset = StreamingDataset(remote=str(root), local=str(cache))
    temp = cache / ".index.json.tmp.4003.00ff00ff"
    temp.write_bytes(b"partial")
    assert discard_stale_temps(dataset.streams[0]) == 1 and not temp.exists()
    assert sorted(xs(dataset)) == sorted(list(range(50)) * 2)
