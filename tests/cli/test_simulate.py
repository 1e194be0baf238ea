"""``streaming-lightning simulate``: its numbers against a direct computation and against the
dataset's own plan, for a local and a remote (moto S3) dataset."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest

from streaming_lightning import StreamingDataset
from streaming_lightning.cli import main
from streaming_lightning.cli._common import human
from streaming_lightning.dataset.world import World
from tests.cli.datasets import write_dataset
from tests.fixtures.s3_server import S3Server

JOB = ["--nodes", "2", "--devices-per-node", "2", "--workers", "2", "--batch-size", "8"]


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = str(tmp_path_factory.mktemp("sim") / "ds")
    write_dataset(out, n=1000, compression="zstd", size_limit=600)
    return out


def _field(out: str, name: str) -> str:
    match = re.search(rf"^{name}\s+(.*)$", out, re.MULTILINE)
    assert match, out
    return match.group(1)


def _nodes(out: str) -> list[tuple[int, str]]:
    return [
        (int(count.replace(",", "")), size.strip())
        for count, size in re.findall(r"^  node \d+\s+([\d,]+) shards\s+(.+)$", out, re.MULTILINE)
    ]


def _expected_nodes(
    dataset: StreamingDataset, nodes: int, per_node: int, ncn: int, batch: int, epoch: int
) -> list[tuple[int, str]]:
    """Distinct shards (and their stored bytes) per node, from the plan, with Python sets."""
    world_size = nodes * per_node
    world = World(0, world_size, 0, per_node, 0, 1)
    plan = dataset.plan(epoch, world, num_canonical_nodes=ncn, global_batch=batch * world_size)
    stored = [
        sum((z or r).bytes for r, z in reader.file_pairs()) for reader in dataset.streams[0].shards
    ]
    result = []
    for node in range(nodes):
        shards: set[int] = set()
        for rank in range(node * per_node, (node + 1) * per_node):
            ids = plan.ids(plan.rank_positions(rank, world_size, 0))
            shards |= set(dataset.locate(ids)[0].tolist())
        result.append((len(shards), human(sum(stored[s] for s in shards))))
    return result


def test_small_job_numbers(dataset_dir: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", dataset_dir, *JOB]) == 0
    out = capsys.readouterr().out
    # 4 devices x 8 = 32 per step; 2 canonical nodes of 500 samples get 16 slots per step
    # each, so 32 steps: 1024 positions, 24 of them padding.
    assert _field(out, "global batch") == "32"
    assert _field(out, "canonical nodes") == "2"
    assert _field(out, "samples per epoch") == "1,000 before padding, 1,024 after"
    assert _field(out, "padding") == "24 samples (2.40%)"
    assert _field(out, "per device") == "256 samples, 32 batches"
    assert _field(out, "per worker") == "16-16 batches"
    dataset = StreamingDataset(local=dataset_dir, batch_size=8)
    assert _nodes(out) == _expected_nodes(dataset, 2, 2, ncn=2, batch=8, epoch=0)
    plan = dataset.plan(0, World(0, 4, 0, 2, 0, 2), num_canonical_nodes=2, global_batch=32)
    assert plan.padded_samples == 1024


@pytest.mark.parametrize(
    "extra", [["--shuffle", "--seed", "7", "--epoch", "3"], ["--workers", "3"]]
)
def test_per_node_shards_match_the_plan(
    dataset_dir: str, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    argv = ["simulate", dataset_dir, *JOB, "--num-canonical-nodes", "4", *extra]
    assert main(argv) == 0
    out = capsys.readouterr().out
    shuffle = "--shuffle" in extra
    dataset = StreamingDataset(
        local=dataset_dir, batch_size=8, shuffle=shuffle, shuffle_seed=7 if shuffle else 9176
    )
    epoch = 3 if shuffle else 0
    assert _nodes(out) == _expected_nodes(dataset, 2, 2, ncn=4, batch=8, epoch=epoch)
    assert _field(out, "shuffle") == ("py1e, seed 7" if shuffle else "off")
    if "--workers" in extra:
        assert _field(out, "per worker") == "10-11 batches"  # 32 batches over 3 workers


def test_device_counts_cover_every_sample(dataset_dir: str) -> None:
    from streaming_lightning.cli.simulate import Job, simulate

    dataset = StreamingDataset(local=dataset_dir, batch_size=8, shuffle=True)
    sim = simulate(dataset, Job(nodes=2, devices_per_node=2, workers=2, batch_size=8))
    assert sim.padded_samples == sim.samples_per_device * 4
    assert (sim.device_shards >= 1).all() and (sim.node_shards >= sim.device_shards[::2]).all()
    total = len(dataset.streams[0].shards)
    assert int(sim.node_shards.sum()) >= total  # every shard is read by some node
    assert np.all(sim.device_bytes <= sim.node_bytes.repeat(2))


def test_remote_dataset_fetches_only_the_index(
    s3: S3Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = s3.new_bucket()
    write_dataset(f"s3://{bucket}/ds", n=1000, compression="zstd", size_limit=600)
    assert main(["simulate", f"s3://{bucket}/ds", *JOB]) == 0
    out = capsys.readouterr().out
    assert _field(out, "padding") == "24 samples (2.40%)"
    assert len(_nodes(out)) == 2


def test_user_errors(dataset_dir: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", dataset_dir, *JOB, "--num-canonical-nodes", "5000"]) == 2
    assert capsys.readouterr().err.startswith("error: num_canonical_nodes=5000 exceeds")
    assert main(["simulate", str(tmp_path), *JOB]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", dataset_dir, "--nodes", "0", "--devices-per-node", "1"])
    assert exit_info.value.code == 2


def test_ten_million_samples_on_64_devices_is_quick(tmp_path: Path) -> None:
    """Only index.json is needed: an index naming 10,000 shards of 1,000 samples (files never
    written) stands in for a 10M-sample dataset."""
    from streaming_lightning.cli.simulate import Job, simulate

    spec = write_dataset(str(tmp_path / "seed"), n=10)[0]
    shards = []
    for i in range(10_000):
        shard = json.loads(json.dumps(spec))
        shard["samples"] = 1000
        shard["raw_data"].update(basename=f"shard.{i:05d}.mds", bytes=64 << 20)
        shards.append(shard)
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "index.json").write_text(json.dumps({"shards": shards, "version": 2}))
    dataset = StreamingDataset(local=str(tmp_path / "big"), batch_size=32)
    start = time.monotonic()
    sim = simulate(dataset, Job(nodes=8, devices_per_node=8, workers=8, batch_size=32))
    elapsed = time.monotonic() - start
    assert sim.epoch_samples == 10_000_000 and sim.padded_samples % (32 * 64) == 0
    # Unshuffled, 8 canonical nodes: each node reads its own eighth of the shards.
    assert sim.node_shards.tolist() == [1250] * 8
    assert elapsed < 30, f"simulate took {elapsed:.1f}s"  # ~1 s; generous for loaded CI


def test_cache_sizing_for_a_remote_dataset(
    s3: S3Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The minimum is what the dataset refuses to start below (readers x largest shard); a
    limit between it and the recommendation works with re-fetches; the verdict says which."""
    bucket = s3.new_bucket()
    url = f"s3://{bucket}/ds"
    write_dataset(url, n=1000, compression="zstd", size_limit=600)
    argv = ["simulate", url, *JOB, "--shuffle", "--predownload", "16"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    dataset = StreamingDataset(remote=url, local=str(tmp_path / "c"), batch_size=8)
    largest = dataset._largest_evictable_shard
    assert _field(out, "  readers") == "4 (devices x workers)"
    assert _field(out, "  minimum") == f"{human(4 * largest)} (readers x largest shard)"
    assert "no cache_limit: each node keeps what it reads" in out
    recommended = re.search(r"^  recommended\s+(\S+ \S+) \((\d+) shards read at once", out, re.M)
    assert recommended, out
    # ~8 samples per shard: 16 samples ahead span 3 shards, for each of the 4 readers.
    assert "2 x 4 readers x 3 shards of predownload" in out
    for limit, verdict in [
        (4 * largest - 1, "below the minimum"),
        (4 * largest, "works but is below"),
        (1 << 30, "holds the working set"),
    ]:
        assert main([*argv, "--cache-limit", str(limit)]) == 0
        assert verdict in capsys.readouterr().out, limit
    # The minimum is the dataset's own: one byte less and its epoch refuses to start.
    from torch.utils.data import DataLoader

    small = StreamingDataset(
        remote=url, local=str(tmp_path / "c2"), batch_size=8, cache_limit=2 * largest - 1
    )
    with pytest.raises(Exception, match=f"at least {2 * largest}"):
        next(iter(DataLoader(small, batch_size=8, num_workers=2)))


def test_local_data_needs_no_cache(dataset_dir: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", dataset_dir, *JOB, "--cache-limit", "1kb"]) == 0
    assert "local data is read in place" in capsys.readouterr().out
