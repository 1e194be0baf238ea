"""The index is parsed once per node and shared (issue #11, guarantee 4): the first process
builds the shard table under a lock, every other rank and worker maps it; a damaged, stale or
superseded table is rebuilt, never trusted; readers exist only for shards in use."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streaming_lightning import MDSWriter
from streaming_lightning.dataset import StreamingDataset
from streaming_lightning.dataset.shard_index import ShardList, load_shared_table
from streaming_lightning.errors import UnsafeTypeError
from streaming_lightning.fsutil import temp_path_for

ROOT = Path(__file__).resolve().parents[2]
BUILT = "built the shard table"


def write(
    root: Path, samples: int = 200, size_limit: int = 200, compression: str | None = "zstd"
) -> Path:
    with MDSWriter(
        out=str(root), columns={"x": "int"}, compression=compression, size_limit=size_limit
    ) as writer:
        for i in range(samples):
            writer.write({"x": i})
    return root


def tables(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*.table"))


def builds(caplog: pytest.LogCaptureFixture) -> int:
    return sum(BUILT in record.getMessage() for record in caplog.records)


@pytest.fixture(autouse=True)
def _log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="streaming_lightning.dataset.shard_index")


def test_ranks_and_spawned_workers_share_one_table(tmp_path: Path) -> None:
    """Two ranks started together, each with two spawned DataLoader workers: one process of
    the six builds the table, all map the same file, and the ranks read the whole epoch."""
    remote = write(tmp_path / "remote", samples=3000, size_limit=120)
    config = json.dumps({"remote": str(remote), "local": str(tmp_path / "cache")})
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.dataset.shard_index_probe", config],
            cwd=ROOT,
            env={**os.environ, "RANK": str(rank), "WORLD_SIZE": "2"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(2)
    ]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    for proc, (_, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-3000:]
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    built = sum(err.count(BUILT) for _, err in outputs)
    assert built == 1, [err[-2000:] for _, err in outputs]
    table_dir = tmp_path / "cache" / ".shard-table"
    assert {r["table"] for r in results} == {str(table_dir / tables(table_dir)[0])}
    assert len(tables(table_dir)) == 1
    ids = sorted(i for r in results for i in r["ids"])
    assert ids == list(range(3000))


def test_a_second_dataset_maps_the_table_without_parsing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    remote = write(tmp_path / "remote")
    first = StreamingDataset(remote=str(remote), local=str(tmp_path / "cache"))
    table = Path(first.streams[0].shard_table.path or "")
    before = table.stat()
    second = StreamingDataset(remote=str(remote), local=str(tmp_path / "cache"))
    assert builds(caplog) == 1
    assert second.streams[0].shard_table.path == str(table)
    assert table.stat().st_ino == before.st_ino
    assert [second[i]["x"] for i in (0, 77, 199)] == [0, 77, 199]


def test_a_damaged_table_is_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    remote = write(tmp_path / "remote")
    first = StreamingDataset(remote=str(remote), local=str(tmp_path / "cache"))
    table = Path(first.streams[0].shard_table.path or "")
    del first
    table.write_bytes(table.read_bytes()[:100])
    dataset = StreamingDataset(remote=str(remote), local=str(tmp_path / "cache"))
    assert builds(caplog) == 2
    assert len(table.read_bytes()) > 100
    assert sorted(dataset[i]["x"] for i in range(200)) == list(range(200))


def test_a_changed_index_gets_a_new_table_and_the_old_one_goes(tmp_path: Path) -> None:
    remote = write(tmp_path / "remote")
    cache = tmp_path / "cache"
    StreamingDataset(remote=str(remote), local=str(cache))
    old = tables(cache / ".shard-table")
    # The same directory now caches a rewritten dataset (its index.json fetched again).
    for path in [*remote.iterdir(), *cache.iterdir()]:
        if path.is_file():
            path.unlink()
    os.rmdir(remote)
    write(remote, samples=300)
    dataset = StreamingDataset(remote=str(remote), local=str(cache))
    new = tables(cache / ".shard-table")
    assert len(new) == 1 and new != old
    assert dataset.num_samples == 300


def test_a_killed_builders_temp_file_is_swept(tmp_path: Path) -> None:
    remote = write(tmp_path / "remote")
    table_dir = tmp_path / "cache" / ".shard-table"
    table_dir.mkdir(parents=True)
    stale = Path(temp_path_for(str(table_dir / "0123.table")))
    stale.write_bytes(b"partial")
    StreamingDataset(remote=str(remote), local=str(tmp_path / "cache"))
    assert not stale.exists()
    assert len(tables(table_dir)) == 1


def test_a_local_dataset_is_never_written_into(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A local-only dataset's table goes to the user's cache root, shared by all its datasets:
    the directory the user gave is left exactly as it was (uncompressed: compressed local
    shards are decompressed beside their originals, as in mosaicml-streaming)."""
    data = write(tmp_path / "data", compression=None)
    listing = sorted(p.name for p in data.rglob("*"))
    monkeypatch.setenv("STREAMING_LIGHTNING_CACHE", str(tmp_path / "user-cache"))
    dataset = StreamingDataset(local=str(data))
    assert [dataset[i]["x"] for i in range(3)] == [0, 1, 2]
    assert sorted(p.name for p in data.rglob("*")) == listing
    assert len(tables(tmp_path / "user-cache" / "shard-tables")) == 1


def test_expired_tables_of_a_shared_directory_are_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAMING_LIGHTNING_CACHE", str(tmp_path / "user-cache"))
    a, b = write(tmp_path / "a", samples=100), write(tmp_path / "b", samples=150)
    StreamingDataset(local=str(a))
    shared = tmp_path / "user-cache" / "shard-tables"
    (old,) = shared.glob("*.table")
    StreamingDataset(local=str(b))
    assert old.exists()  # another dataset's table, in use: kept
    month_ago = time.time() - 30 * 24 * 3600
    os.utime(old, (month_ago, month_ago))
    c = write(tmp_path / "c", samples=50)
    StreamingDataset(local=str(c))
    assert not old.exists() and len(tables(shared)) == 2


def test_without_a_table_directory_the_table_is_in_memory(tmp_path: Path) -> None:
    data = write(tmp_path / "data")
    table = load_shared_table(str(data / "index.json"), None, exclusive=False)
    assert table.path is None and int(table.samples.sum()) == 200


def test_readers_are_made_on_demand_and_bounded(tmp_path: Path) -> None:
    data = write(tmp_path / "data", samples=400, size_limit=100)
    table = load_shared_table(str(data / "index.json"), None, exclusive=False)
    shards = ShardList(table, str(data), None, allow_unsafe_types=False)
    shards.KEEP = 8
    assert len(shards) == len(table) > 20
    first = shards[0]
    assert shards[0] is first and shards[-len(shards)] is first
    assert [s.samples for s in shards[2:5]] == table.samples[2:5].tolist()
    seen = sum(len(reader) for reader in shards)
    assert seen == 400 and len(shards._made) == 8
    with pytest.raises(IndexError):
        shards[len(shards)]


def test_an_unsafe_column_in_a_later_shard_fails_at_construction(tmp_path: Path) -> None:
    data = write(tmp_path / "data")
    index = json.loads((data / "index.json").read_text())
    index["shards"][3]["column_encodings"] = ["pkl"]
    index["shards"][3]["column_sizes"] = [None]
    (data / "index.json").write_text(json.dumps(index))
    with pytest.raises(UnsafeTypeError, match="pkl"):
        StreamingDataset(local=str(data))


def test_a_worker_whose_table_was_swept_rebuilds_it(tmp_path: Path) -> None:
    """A spawned worker unpickles the table by path; if the file was removed meanwhile (a
    shared directory's expiry, another job's sweep), it is rebuilt from the same index —
    and refused if that index changed since the job opened it."""
    import pickle

    remote = write(tmp_path / "remote")
    dataset = StreamingDataset(remote=str(remote), local=str(tmp_path / "cache"))
    table = dataset.streams[0].shard_table
    assert table.index_path == str(tmp_path / "cache" / "index.json")
    state = pickle.dumps(dataset)
    Path(table.path or "").unlink()
    again = pickle.loads(state)
    rebuilt = again.streams[0].shard_table
    assert rebuilt.path is None and rebuilt.samples.tolist() == table.samples.tolist()
    assert [again[i]["x"] for i in (0, 150)] == [0, 150]
    index = tmp_path / "cache" / "index.json"
    index.write_text(index.read_text().replace('"samples":', '"samples": ', 1))
    with pytest.raises(Exception, match="changed since this job opened it"):
        pickle.loads(state)
