"""BatchesView yields exactly what a per-sample DataLoader collates, in the same order."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from streaming_lightning import MDSWriter
from streaming_lightning.dataset import BatchesLoader, BatchesView, StreamingDataset
from streaming_lightning.errors import ConfigError


def _write(path: Path, n: int, columns: dict[str, str] | None = None) -> str:
    columns = columns or {"tokens": "ndarray:uint16:8", "id": "int", "w": "float32"}
    rng = np.random.default_rng(0)
    with MDSWriter(out=str(path), columns=columns, size_limit=1 << 10) as writer:
        for i in range(n):
            writer.write(
                {
                    "tokens": rng.integers(0, 60_000, 8, dtype=np.uint16),
                    "id": i,
                    "w": np.float32(i / 7),
                    "text": f"s{i}",
                }
            )
    return str(path)


def _batches(loader: DataLoader) -> list[dict[str, torch.Tensor]]:  # type: ignore[type-arg]
    return list(loader)


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("shuffle", [False, True])
def test_batches_equal_collated_samples(tmp_path: Path, num_workers: int, shuffle: bool) -> None:
    root = _write(tmp_path / "ds", 997)
    kwargs = {"local": root, "batch_size": 32, "shuffle": shuffle, "num_canonical_nodes": 4}
    per_sample = _batches(DataLoader(StreamingDataset(**kwargs), 32, num_workers=num_workers))
    view = BatchesView(StreamingDataset(**kwargs))
    batched = _batches(DataLoader(view, batch_size=None, num_workers=num_workers))
    assert len(batched) == len(per_sample) == len(view)
    loader = BatchesLoader(StreamingDataset(**kwargs), num_workers=num_workers)
    assert len(loader) == len(view)
    for got, expected in zip(_batches(loader), batched):
        assert list(got) == list(expected)
        assert all(torch.equal(got[name], expected[name]) for name in expected)
    for got, expected in zip(batched, per_sample):
        assert list(got) == list(expected)
        for name in expected:
            assert got[name].dtype == expected[name].dtype, name
            assert torch.equal(got[name], expected[name]), name
    ids = torch.cat([b["id"] for b in batched])
    assert set(ids.tolist()) == set(range(997))


def test_batches_need_batch_size(tmp_path: Path) -> None:
    root = _write(tmp_path / "ds", 50)
    with pytest.raises(ConfigError, match="batch_size"):
        BatchesView(StreamingDataset(local=root))
    with pytest.raises(ConfigError, match="shuffle"):
        BatchesLoader(StreamingDataset(local=root, batch_size=8), shuffle=True)


def _ids_and_count(samples: list[dict[str, Any]]) -> tuple[list[int], int]:
    return [int(sample["id"]) for sample in samples], len(samples)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_collate_fn_builds_each_batch_from_its_samples(tmp_path: Path, num_workers: int) -> None:
    """Samples that do not stack (detection boxes): the loader's collate_fn gets each device
    batch's samples, in the order a plain DataLoader would give them."""
    root = _write(tmp_path / "ds", 203)
    kwargs = {"local": root, "batch_size": 16, "shuffle": True, "num_canonical_nodes": 2}
    plain = DataLoader(
        StreamingDataset(**kwargs), 16, num_workers=num_workers, collate_fn=_ids_and_count
    )
    loader = BatchesLoader(
        StreamingDataset(**kwargs), num_workers=num_workers, collate_fn=_ids_and_count
    )
    got = list(loader)
    assert len(got) == len(loader) and got == list(plain)
    assert {i for ids, _ in got for i in ids} == set(range(203))  # with padding repeats


@pytest.mark.parametrize("num_workers", [0, 2])
def test_variable_columns_equal_default_collate(tmp_path: Path, num_workers: int) -> None:
    """bytes (packed), str and variable arrays (default_collate), numbers (numpy)."""
    columns = {
        "id": "int",
        "blob": "bytes",
        "text": "str",
        "x": "float64",
        "arr": "ndarray:int32",
        "meta": "json",
    }
    rng = np.random.default_rng(5)
    with MDSWriter(out=str(tmp_path / "v"), columns=columns, size_limit=1 << 12) as writer:
        for i in range(301):
            writer.write(
                {
                    "id": i,
                    "blob": rng.bytes(int(rng.integers(0, 400))),
                    "text": f"sample {i}",
                    "x": np.float64(i / 3),
                    "arr": np.arange(3, dtype=np.int32) * i,
                    "meta": {"i": i},
                }
            )
    kwargs = {"local": str(tmp_path / "v"), "batch_size": 16, "shuffle": True}
    dataset = StreamingDataset(**kwargs)
    assert not dataset.batchable
    expected = list(DataLoader(StreamingDataset(**kwargs), 16, num_workers=num_workers))
    got = list(BatchesLoader(dataset, num_workers=num_workers))
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert list(a) == list(b)
        _assert_same(a, b)


def _assert_same(got: Any, expected: Any) -> None:
    assert type(got) is type(expected)
    if isinstance(expected, torch.Tensor):
        assert got.dtype == expected.dtype and torch.equal(got, expected)
    elif isinstance(expected, dict):
        assert list(got) == list(expected)
        for key in expected:
            _assert_same(got[key], expected[key])
    elif isinstance(expected, list):
        assert len(got) == len(expected)
        for x, y in zip(got, expected):
            _assert_same(x, y)
    else:
        assert got == expected


def _write_images(path: Path, n: int, size: int = 20_000) -> str:
    """Encoded-image-like rows: raw bytes (some large enough for the pread path) + a label."""
    rng = np.random.default_rng(9)
    columns = {"image": "bytes", "label": "int"}
    with MDSWriter(out=str(path), columns=columns, size_limit=1 << 18) as writer:
        for i in range(n):
            writer.write({"image": rng.bytes(int(rng.integers(size // 4, size))), "label": i})
    return str(path)


def _shm_bytes() -> int:
    """Shared memory mapped by this process and its loader workers: the segments torch passes
    tensors in show up as /dev/shm mappings (unlinked or not). Counting only our own process
    tree keeps the check exact while other jobs (parallel tests) use shared memory too."""
    import psutil

    total = 0
    me = psutil.Process()
    for process in [me, *me.children(recursive=True)]:
        try:
            with open(f"/proc/{process.pid}/maps") as maps:
                for line in maps:
                    if "/dev/shm/" in line:
                        start, end = line.split(" ", 1)[0].split("-")
                        total += int(end, 16) - int(start, 16)
        except (FileNotFoundError, ProcessLookupError):
            continue  # a worker that exited meanwhile maps nothing
    return total


@pytest.mark.parametrize("num_workers", [0, 2])
def test_plans_read_in_main_process_equal_default_collate(tmp_path: Path, num_workers: int) -> None:
    """bytes + numbers: workers send BatchPlans, the main process reads them — same batches as
    a per-sample DataLoader, and no shared memory carries the bytes."""
    root = _write_images(tmp_path / "img", 203, size=80_000)
    kwargs = {"local": root, "batch_size": 16, "shuffle": True, "num_canonical_nodes": 2}
    dataset = StreamingDataset(**kwargs)
    assert dataset.reads_are_copies and not dataset.batchable
    view_items = list(BatchesView(StreamingDataset(**kwargs)))
    assert view_items and all(type(item).__name__ == "BatchPlan" for item in view_items)
    expected = list(DataLoader(StreamingDataset(**kwargs), 16, num_workers=num_workers))
    before = _shm_bytes()
    loader = BatchesLoader(dataset, num_workers=num_workers)
    got = []
    for batch in loader:
        # ~800 KB batches, 4 in flight: through shared memory that would be ~3 MB.
        assert _shm_bytes() - before < 1 << 20
        got.append(batch)
    assert len(got) == len(expected) == len(loader)
    for a, b in zip(got, expected):
        _assert_same(a, b)


def test_plan_read_after_eviction_fetches_again(tmp_path: Path) -> None:
    """A shard evicted between a worker's plan and the main process's read is fetched again,
    not read as missing."""
    remote = _write_images(tmp_path / "remote", 120)
    dataset = StreamingDataset(
        remote=remote, local=str(tmp_path / "cache"), batch_size=8, shuffle=False
    )
    plans = list(dataset.iter_batch_plans())
    main = pickle.loads(pickle.dumps(dataset))  # the main process: its own cache handle
    evicted = list((tmp_path / "cache").glob("*.mds"))
    assert len(evicted) > 2
    for path in evicted:
        path.unlink()  # what another process's eviction leaves
    fresh = StreamingDataset(remote=remote, local=str(tmp_path / "cache2"), batch_size=8)
    for shards, within in plans:
        got = main.read_samples(shards, within)
        want = [fresh[int(fresh.shard_offsets[s] + w)] for s, w in zip(shards, within)]
        assert got == want
    assert all(path.exists() for path in evicted)


class _Doubled(StreamingDataset):
    """mosaicml-style subclass: transforms in ``get_item``."""

    def get_item(self, index: int) -> dict[str, Any]:
        sample = super().get_item(index)
        return {"id2": sample["id"] * 2, "tokens": sample["tokens"]}


class _Tagged(StreamingDataset):
    """Older mosaicml style: transforms in ``__getitem__``."""

    def __getitem__(self, index: int) -> Any:
        return ("tag", super().__getitem__(index)["id"])


@pytest.mark.parametrize("num_workers", [0, 2])
def test_subclass_transforms_apply_everywhere(tmp_path: Path, num_workers: int) -> None:
    """Iteration, random access and both loaders yield the subclass's samples, never the
    stored ones (the batch fast paths are off for it)."""
    root = _write(tmp_path / "ds", 101)
    kwargs = {"local": root, "batch_size": 8, "shuffle": True, "num_canonical_nodes": 2}
    doubled = _Doubled(**kwargs)
    assert doubled.transforms_samples and not doubled.batchable
    assert not doubled.reads_are_copies
    assert list(doubled[3]) == ["id2", "tokens"] and doubled[3]["id2"] == 6
    assert np.array_equal(doubled[3]["tokens"], StreamingDataset(**kwargs)[3]["tokens"])
    assert doubled[-1]["id2"] == 200
    iterated = list(_Doubled(**kwargs))
    assert sorted(s["id2"] for s in iterated) == sorted(
        2 * s["id"] for s in StreamingDataset(**kwargs)
    )
    per_sample = list(DataLoader(_Doubled(**kwargs), 8, num_workers=num_workers))
    batched = list(BatchesLoader(_Doubled(**kwargs), num_workers=num_workers))
    assert len(batched) == len(per_sample)
    for a, b in zip(batched, per_sample):
        _assert_same(a, b)
    assert "id2" in batched[0] and "id" not in batched[0]
    tagged = _Tagged(**kwargs)
    assert tagged[5] == ("tag", 5)
    # Non-dict samples are collated as a DataLoader would (default_collate in the worker).
    per_sample = list(DataLoader(_Tagged(**kwargs), 8, num_workers=num_workers))
    batched = list(BatchesLoader(_Tagged(**kwargs), num_workers=num_workers))
    assert len(batched) == len(per_sample)
    for a, b in zip(batched, per_sample):
        assert a[0] == b[0] and torch.equal(a[1], b[1])
    assert sorted(t[1] for t in tagged) == sorted(s["id"] for s in StreamingDataset(**kwargs))
