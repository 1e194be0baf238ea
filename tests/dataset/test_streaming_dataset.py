"""StreamingDataset in one process: reading, random access, resume, streams, cache, errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
from torch.utils.data import DataLoader

from streaming_lightning import MDSWriter
from streaming_lightning.dataset import Stream, StreamingDataset
from streaming_lightning.dataset.cache import ShardCache, ShardRef
from streaming_lightning.errors import ConfigError, IndexFormatError, StorageError
from tests.fixtures.s3_server import S3Server


def make(
    path: Path,
    n: int,
    *,
    start: int = 0,
    columns: dict[str, str] | None = None,
    size_limit: int = 700,
) -> str:
    with MDSWriter(
        out=str(path),
        columns=columns or {"x": "int"},
        size_limit=size_limit,
        compression="zstd",
        hashes=["xxh64"],
    ) as writer:
        for i in range(n):
            writer.write({"x": start + i} if columns is None else {"x": start + i, "y": "v"})
    return str(path)


def hold_flock(path: str, mode: str) -> subprocess.Popen[str]:
    """Another process holding ``flock(path, mode)``; returns once it holds it."""
    code = (
        "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
        f"fcntl.flock(fd, fcntl.{mode}); print('held', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, path], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def xs(iterable) -> list[int]:  # type: ignore[no-untyped-def]
    return [int(s["x"]) for s in iterable]


def test_unshuffled_local_reads_in_order(tmp_path: Path) -> None:
    ds = StreamingDataset(local=make(tmp_path / "a", 250))
    assert xs(ds) == list(range(250))
    assert len(ds) == 250 and ds.size == ds.num_samples == 250
    assert ds[17]["x"] == 17 and ds[-1]["x"] == 249
    with pytest.raises(IndexError):
        ds[250]


def test_shuffled_epochs_differ_and_cover_everything(tmp_path: Path) -> None:
    ds = StreamingDataset(local=make(tmp_path / "a", 500), shuffle=True, batch_size=8)
    first, second = xs(ds), xs(ds)
    assert first != second
    assert set(first) == set(second) == set(range(500))
    assert len(first) == len(ds) == 504  # padded to full global batches of 8
    again = StreamingDataset(local=str(tmp_path / "a"), shuffle=True, batch_size=8)
    assert xs(again) == first, "same seed, same epoch, same order"
    again.set_epoch(1)
    assert xs(again) == second


def test_remote_stream_downloads_on_demand_and_validates(s3: S3Server, tmp_path: Path) -> None:
    bucket = s3.new_bucket()
    make(tmp_path / "src", 300)
    with MDSWriter(
        out=f"s3://{bucket}/ds",
        columns={"x": "int"},
        size_limit=700,
        compression="zstd",
        hashes=["xxh64"],
    ) as w:
        for i in range(300):
            w.write({"x": i})
    ds = StreamingDataset(
        remote=f"s3://{bucket}/ds", local=str(tmp_path / "cache"), validate_hash="xxh64"
    )
    assert ds[123]["x"] == 123  # random access fetches one shard
    shards_present = [n for n in os.listdir(tmp_path / "cache") if n.endswith(".mds")]
    assert len(shards_present) == 1
    assert xs(ds) == list(range(300))
    assert not [n for n in os.listdir(tmp_path / "cache") if n.endswith(".zstd")], "keep_zip=False"
    other = StreamingDataset(remote=f"s3://{bucket}/ds")  # no local: a per-remote cache dir
    assert other.streams[0].local != str(tmp_path / "cache") and xs(other)[:3] == [0, 1, 2]


def test_resume_yields_exactly_the_rest(tmp_path: Path) -> None:
    data = make(tmp_path / "a", 333)
    ds = StreamingDataset(local=data, shuffle=True, batch_size=4)
    ds.set_epoch(2)
    full = xs(ds)
    state = ds.state_dict(40, from_beginning=True)
    assert state["epoch"] == 2 and state["sample_in_epoch"] == 40
    resumed = StreamingDataset(local=data, shuffle=True, batch_size=4)
    resumed.load_state_dict(state)
    assert xs(resumed) == full[40:]
    assert resumed.state_dict(8, from_beginning=False)["sample_in_epoch"] == 48
    assert xs(resumed) != full[40:], "the next epoch starts from its beginning"


def test_resume_through_dataloader_workers(tmp_path: Path) -> None:
    data = make(tmp_path / "a", 400)
    full = xs(StreamingDataset(local=data, shuffle=True, batch_size=8))
    resumed = StreamingDataset(local=data, shuffle=True, batch_size=8)
    resumed.load_state_dict({"epoch": 0, "sample_in_epoch": 96})
    loader = DataLoader(
        resumed, batch_size=8, num_workers=2, collate_fn=lambda b: [int(s["x"]) for s in b]
    )
    assert [x for batch in loader for x in batch] == full[96:]
    assert len(loader) == len(resumed) // 8


def test_resume_refuses_what_it_cannot_honour(tmp_path: Path) -> None:
    data = make(tmp_path / "a", 200)
    ds = StreamingDataset(local=data, batch_size=4)
    state = ds.state_dict(8, True)
    with pytest.raises(ConfigError, match="different dataset"):
        StreamingDataset(local=make(tmp_path / "b", 150), batch_size=4).load_state_dict(state)
    with pytest.raises(ConfigError, match="missing"):
        ds.load_state_dict({"epoch": 1})


def test_stream_mixing(tmp_path: Path) -> None:
    a, b = make(tmp_path / "a", 100), make(tmp_path / "b", 50, start=1000)
    both = StreamingDataset(streams=[Stream(local=a), Stream(local=b)])
    assert xs(both) == list(range(100)) + list(range(1000, 1050))
    mixed = StreamingDataset(
        streams=[Stream(local=a, repeat=2), Stream(local=b, choose=20)], shuffle=True
    )
    counts = Counter(xs(mixed))
    assert sum(counts.values()) == 220
    assert all(counts[i] == 2 for i in range(100))
    assert (
        sum(counts[i] for i in range(1000, 1050)) == 20
        and max(counts[i] for i in range(1000, 1050)) == 1
    )
    weighted = StreamingDataset(
        streams=[Stream(local=a, proportion=1), Stream(local=b, proportion=3)], epoch_size=80
    )
    counts = Counter(x >= 1000 for x in xs(weighted))
    assert counts == {False: 20, True: 60}
    balanced = StreamingDataset(streams=[Stream(local=a, choose=30), Stream(local=b)], shuffle=True)
    e0 = {x for x in xs(balanced) if x < 100}
    e1 = {x for x in xs(balanced) if x < 100}
    assert len(e0) == len(e1) == 30 and e0 != e1, "balanced sampling redraws the subset each epoch"
    fixed = StreamingDataset(
        streams=[Stream(local=a, choose=30), Stream(local=b)], shuffle=True, sampling_method="fixed"
    )
    assert {x for x in xs(fixed) if x < 100} == {x for x in xs(fixed) if x < 100}


def test_cache_limit_evicts_least_recently_used(s3: S3Server, tmp_path: Path) -> None:
    bucket = s3.new_bucket()
    with MDSWriter(
        out=f"s3://{bucket}/ds", columns={"b": "bytes", "x": "int"}, size_limit=20_000
    ) as w:
        for i in range(400):
            w.write({"b": bytes(1000), "x": i})
    cache = tmp_path / "cache"
    ds = StreamingDataset(
        remote=f"s3://{bucket}/ds", local=str(cache), cache_limit="70kb", batch_size=4
    )
    assert xs(ds) == list(range(400))
    on_disk = sum(f.stat().st_size for f in cache.iterdir() if f.name.startswith("shard."))
    assert on_disk <= 70 * 1024
    with pytest.raises(ConfigError, match="smaller than the largest shard"):
        StreamingDataset(remote=f"s3://{bucket}/ds", local=str(cache), cache_limit=1000)


def test_lease_of_a_killed_process_does_not_block_eviction(tmp_path: Path) -> None:
    data = make(tmp_path / "a", 100)
    ds = StreamingDataset(remote=data, local=str(tmp_path / "cache"))
    cache = ShardCache(ds.streams, None)
    lease = cache._lease_path(ShardRef(0, 0))
    os.makedirs(os.path.dirname(lease), exist_ok=True)
    assert not ShardCache(StreamingDataset(local=data).streams, None)._try_evict(ShardRef(0, 0)), (
        "a local-only dataset is never evicted"
    )
    holder = hold_flock(lease, "LOCK_SH")
    ds[0]  # make shard 0 present locally (decompressed)
    assert not cache._try_evict(ShardRef(0, 0)), "a shard in use elsewhere is never evicted"
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(10)
    assert cache._try_evict(ShardRef(0, 0)), "the kernel released the dead process's lease"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batching_method": "bogus", "batch_size": 4}, "batching_method must be one of"),
        ({"batching_method": "per_stream"}, "pass batch_size"),
        ({"shuffle_algo": "py9"}, "Unknown shuffle_algo"),
        ({"sampling_method": "random"}, "sampling_method"),
        ({"batch_size": 0}, "batch_size"),
        ({"replication": 0}, "replication"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        StreamingDataset(local=make(tmp_path / "a", 10), **kwargs)  # type: ignore[arg-type]


def test_bad_datasets(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no samples"):
        StreamingDataset(local=make(tmp_path / "empty", 0))
    with pytest.raises(FileNotFoundError, match="No index.json"):
        StreamingDataset(local=str(tmp_path / "nothing"))
    a = make(tmp_path / "a", 10)
    b = make(tmp_path / "b", 10, columns={"x": "int", "y": "str"})
    with pytest.raises(ConfigError, match="different columns"):
        StreamingDataset(streams=[Stream(local=a), Stream(local=b)])
    StreamingDataset(remote=a, local=str(tmp_path / "cache"))
    with pytest.raises(ConfigError, match="caches"):
        StreamingDataset(remote=b, local=str(tmp_path / "cache"))
    (tmp_path / "a" / "index.json").write_text("{}")
    with pytest.raises(IndexFormatError):
        StreamingDataset(local=a)
    with pytest.raises(ConfigError, match="either streams"):
        StreamingDataset(streams=[Stream(local=a)], local=a)


def test_storage_errors_name_the_worker(tmp_path: Path) -> None:
    data = make(tmp_path / "a", 50)
    ds = StreamingDataset(remote=data, local=str(tmp_path / "cache"))
    os.unlink(os.path.join(data, "shard.00001.mds.zstd"))
    with pytest.raises(StorageError, match="shard.00001.mds.zstd"):
        xs(ds)
    assert np.isfinite(len(ds))


def test_resume_with_another_global_batch_size_continues_the_saved_order(tmp_path: Path) -> None:
    """A checkpoint from batch 4 resumed at batch 6: the rest of the epoch, in order, re-dealt."""
    data = make(tmp_path / "a", 203)
    original = StreamingDataset(local=data, shuffle=True, batch_size=4)
    full = xs(original)
    state = original.state_dict(44, from_beginning=True)
    resumed = StreamingDataset(local=data, shuffle=True, batch_size=6)
    resumed.load_state_dict(state)
    rest = full[44:]
    assert len(resumed) % 6 == 0 and len(resumed) >= len(rest)
    got = xs(resumed)
    assert got[: len(rest)] == rest, "the unseen samples come in the saved order"
    assert len(got) == len(resumed) and set(got[len(rest) :]) <= set(rest), (
        "padding repeats the rest"
    )
    # A checkpoint taken inside the resumed epoch still counts in the original plan.
    again = StreamingDataset(local=data, shuffle=True, batch_size=6)
    again.load_state_dict(state)
    mid = again.state_dict(44 + 60, from_beginning=True)
    assert mid["global_batch_size"] == 4 and mid["sample_in_epoch"] == 104
    third = StreamingDataset(local=data, shuffle=True, batch_size=2)
    third.load_state_dict(mid)
    assert xs(third)[: len(full) - 104] == full[104:]


def _rank_batches(
    data: list[str], world: int, method: str, batch: int, monkeypatch: pytest.MonkeyPatch
) -> list[list[int]]:
    """Global batches of a ``world``-rank job, each rank iterated in turn in this process."""
    per_rank = []
    for rank in range(world):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", str(world))
        ds = StreamingDataset(
            streams=[Stream(local=d) for d in data],
            shuffle=True,
            batch_size=batch,
            batching_method=method,
            num_canonical_nodes=2,
        )
        got = xs(ds)
        assert len(got) == len(ds)
        per_rank.append([got[i : i + batch] for i in range(0, len(got), batch)])
    return [[x for rank in per_rank for x in rank[k]] for k in range(len(per_rank[0]))]


@pytest.mark.parametrize("method", ["per_stream", "stratified", "device_per_stream"])
def test_batching_methods(tmp_path: Path, method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data = [make(tmp_path / "a", 120), make(tmp_path / "b", 40, start=1000)]
    one = _rank_batches(data, 1, method, 8, monkeypatch)
    two = _rank_batches(data, 2, method, 4, monkeypatch)
    flat = [x for batch in one for x in batch]
    assert set(flat) == set(range(120)) | set(range(1000, 1040)), "every sample at least once"
    if method == "per_stream":
        assert all(len({x >= 1000 for x in batch}) == 1 for batch in one), (
            "one stream per global batch"
        )
        kinds = [batch[0] >= 1000 for batch in one]
        assert kinds != sorted(kinds), "stream batches are interleaved"
        assert two == one, "same global batches on another world"
    elif method == "stratified":
        assert all(sum(x >= 1000 for x in batch) == 2 for batch in one), (
            "each batch holds b's share (2 of 8)"
        )
        assert two == one, "same global batches on another world"
    else:
        for batch in two:  # each device batch (4 samples) from a single stream
            assert (
                len({x >= 1000 for x in batch[:4]}) == 1
                and len({x >= 1000 for x in batch[4:]}) == 1
            )


def test_download_lock_of_a_killed_process_is_reclaimed(tmp_path: Path) -> None:
    """A run killed mid-download leaves a lock file; the next run takes it over at once."""
    from streaming_lightning.storage.transfer import lock_path_for

    data = make(tmp_path / "a", 100)
    target = tmp_path / "cache" / "shard.00000.mds.zstd"
    lock = lock_path_for(str(target))
    os.makedirs(os.path.dirname(lock), exist_ok=True)
    holder = hold_flock(lock, "LOCK_EX")
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(10)
    ds = StreamingDataset(remote=data, local=str(tmp_path / "cache"), download_timeout=5)
    assert xs(ds) == list(range(100)), "no FileExistsError, no wait for the dead process"


def test_state_dict_right_after_load_reports_the_loaded_position(tmp_path: Path) -> None:
    """Before any worker begins, the epoch is the one loaded (or set), not the one before."""
    root = make(tmp_path / "ds", 100)
    dataset = StreamingDataset(local=root, batch_size=4)
    state = dataset.state_dict(0, True)
    dataset.load_state_dict({**state, "epoch": 2, "sample_in_epoch": 40})
    after = dataset.state_dict(0, False)
    assert (after["epoch"], after["sample_in_epoch"]) == (2, 40)
    dataset.set_epoch(5)
    assert dataset.state_dict(0, True)["epoch"] == 5


def test_dataset_pickles_for_spawned_workers(tmp_path: Path) -> None:
    import pickle

    root = make(tmp_path / "ds", 100)
    dataset = StreamingDataset(local=root, batch_size=4, shuffle=True)
    first = xs(islice(iter(dataset), 10))
    dataset.set_epoch(0)
    clone = pickle.loads(pickle.dumps(dataset))
    assert xs(islice(iter(clone), 10)) == first
