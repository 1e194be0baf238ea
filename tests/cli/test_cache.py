"""``streaming-lightning cache ls/clean`` on a cache root with real dataset caches, a split
cache, and a directory that is not a cache (which must never be touched)."""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

import pytest

from streaming_lightning import StreamingDataset
from streaming_lightning.cli import main
from streaming_lightning.dataset.stream import SOURCE_MARKER
from tests.cli.datasets import write_dataset

DAY = 86400.0


def _fake_cache(path: Path, remote: str, shards: int, age_days: float) -> Path:
    """A dataset cache as the library leaves it: marker, index, shards, lock and lease files."""
    (path / ".locks").mkdir(parents=True)
    (path / SOURCE_MARKER).write_text(json.dumps({"remote": remote}))
    (path / "index.json").write_text("{}")
    for i in range(shards):
        (path / f"shard.{i:05d}.mds").write_bytes(b"x" * 5000)
        (path / ".locks" / f"shard.{i:05d}.mds.lease").touch()
        (path / ".locks" / f"shard.{i:05d}.mds.lock").touch()
    when = time.time() - age_days * DAY
    for top, _, files in os.walk(path):
        for name in files:
            os.utime(os.path.join(top, name), (when, when))
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "cache"
    _fake_cache(root / "old-1111", "s3://bucket/old", shards=3, age_days=40)
    _fake_cache(root / "new-2222", "s3://bucket/new", shards=2, age_days=1)
    _fake_cache(root / "split-3333" / "train", "s3://bucket/split/train", shards=1, age_days=50)
    foreign = root / "not-a-cache"
    (foreign / ".locks").mkdir(parents=True)
    (foreign / "precious.mds").write_bytes(b"keep me")
    old = time.time() - 400 * DAY
    os.utime(foreign / "precious.mds", (old, old))
    return root


def _snapshot(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_ls_lists_each_dataset_cache(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cache", "ls", "--root", str(root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[-2]: line.split() for line in lines[1:4]}
    assert set(rows) == {
        str(root / "old-1111"),
        str(root / "new-2222"),
        str(root / "split-3333" / "train"),
    }
    assert rows[str(root / "old-1111")][-1] == "(s3://bucket/old)"
    assert rows[str(root / "old-1111")][-3] == "3"  # shard files
    assert rows[str(root / "new-2222")][-3] == "2"
    # Most recently used first, with its date.
    assert lines[1].split()[-2] == str(root / "new-2222")
    assert lines[1].startswith(time.strftime("%Y-%m-%d", time.localtime(time.time() - DAY)))
    assert "3 dataset caches" in lines[4] and "1 other directories" in lines[5]


def test_ls_of_a_cache_made_by_streaming_dataset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_dataset(str(tmp_path / "remote"), n=50)
    cache = tmp_path / "cache" / "ds"
    dataset = StreamingDataset(remote=str(tmp_path / "remote"), local=str(cache))
    assert dataset[0]["x"] == 0  # fetches the first shard into the cache
    assert main(["cache", "ls", "--root", str(tmp_path / "cache")]) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert line.endswith(f"{cache}  ({tmp_path / 'remote'})") and line.split()[-3] == "1"


def test_dry_run_deletes_nothing(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _snapshot(root)
    assert main(["cache", "clean", "--root", str(root), "--older-than", "30", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert _snapshot(root) == before
    would = [line.split()[2] for line in out.splitlines() if line.startswith("would remove /")]
    # Least recently used first; the recent cache and the foreign directory are not listed.
    assert would == [str(root / "split-3333" / "train"), str(root / "old-1111")]
    assert "not-a-cache" not in out


def test_clean_older_than_removes_only_old_caches(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cache", "clean", "--root", str(root), "--older-than", "30"]) == 0
    assert sorted(p.name for p in root.iterdir()) == ["new-2222", "not-a-cache"]
    assert (root / "not-a-cache" / "precious.mds").read_bytes() == b"keep me"
    assert "removed 2 dataset caches" in capsys.readouterr().out


def test_a_held_lease_protects_its_cache(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lease = root / "new-2222" / ".locks" / "shard.00001.mds.lease"
    fd = os.open(lease, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # what a reading rank holds
        assert main(["cache", "clean", "--root", str(root), "--all"]) == 0
        out = capsys.readouterr().out
        assert (
            f"skipped {root / 'new-2222'}: in use (.locks/shard.00001.mds.lease is locked)" in out
        )
        assert sorted(p.name for p in root.iterdir()) == ["new-2222", "not-a-cache"]
        assert (root / "new-2222" / "shard.00000.mds").exists()
    finally:
        os.close(fd)
    assert main(["cache", "clean", "--root", str(root), "--all"]) == 0
    assert [p.name for p in root.iterdir()] == ["not-a-cache"]
    assert (root / "not-a-cache" / "precious.mds").read_bytes() == b"keep me"


def test_bad_roots_and_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing"
    assert main(["cache", "ls", "--root", str(missing)]) == 2
    assert capsys.readouterr().err == f"error: Cache root {missing} does not exist.\n"
    assert main(["cache", "clean", "--root", str(missing), "--all"]) == 2
    assert not missing.exists()
    for argv in (["--root", str(tmp_path)], ["--all", "--older-than", "3"], ["--older-than", "x"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["cache", "clean", *argv])
        assert exit_info.value.code == 2


def test_default_root_comes_from_the_environment(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STREAMING_LIGHTNING_CACHE", str(root))
    assert main(["cache", "ls"]) == 0
    assert "3 dataset caches" in capsys.readouterr().out
    monkeypatch.setenv("STREAMING_LIGHTNING_CACHE", str(root / "never-made"))
    assert main(["cache", "clean", "--all"]) == 0
    assert "does not exist" in capsys.readouterr().out
