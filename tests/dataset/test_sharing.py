"""Sharing a machine (issue #11, guarantee 2): two jobs with different configurations on one
cache, and two Unix users on one remote, at the same time — each gets exactly its own order,
and nothing either leaves behind (in /dev/shm, the temp dir or the cache) can collide."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streaming_lightning import MDSWriter

ROOT = Path(__file__).resolve().parents[2]


def _write(path: Path, n: int = 700) -> str:
    with MDSWriter(out=str(path), columns={"x": "int"}, size_limit=600, compression="zstd") as w:
        for i in range(n):
            w.write({"x": i})
    return str(path)


def _start(
    config: dict[str, Any], user: str | None = None, **extra_env: str
) -> subprocess.Popen[str]:
    module = ["-m", "tests.dataset.as_user", user] if user else ["-m", "tests.dataset.elastic_run"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), **extra_env}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        env.pop(key, None)
    return subprocess.Popen(
        [sys.executable, *module, json.dumps(config)],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]


def _order(out: Path) -> list[list[int]]:
    return json.loads(out.read_text())["epochs"]


def _shm_names() -> set[str]:
    return set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()


JOBS = [  # two jobs that differ in everything a config can change
    {"seed": 1, "batch": 8, "workers": 2, "ncn": 4, "algo": "py1e"},
    {"seed": 2, "batch": 5, "workers": 1, "ncn": 2, "algo": "py1b", "batching": "stratified"},
]


def test_two_jobs_with_different_configs_share_one_bounded_cache(tmp_path: Path) -> None:
    data = _write(tmp_path / "data")
    references = []
    for n, job in enumerate(JOBS):  # each alone, straight from the dataset directory
        out = tmp_path / f"alone{n}.json"
        proc = _start({**job, "data": data, "out": str(out), "epochs": 2})
        _finish([proc])
        references.append(_order(out))
    cache = tmp_path / "shared-cache"
    shm_before = _shm_names()
    procs, outs = [], []
    for n, job in enumerate(JOBS):  # both at once, through one cache far smaller than the data
        out = tmp_path / f"together{n}.json"
        config = {**job, "data": data, "cache": str(cache), "cache_limit": 3000}
        procs.append(_start({**config, "out": str(out), "epochs": 2}))
        outs.append(out)
    _finish(procs)
    for out, reference in zip(outs, references):
        assert _order(out) == reference, "a job's order changed because another shared its cache"
    leftover = _shm_names() - shm_before
    assert not leftover, f"names left in /dev/shm: {sorted(leftover)}"
    partial = [p.name for p in cache.iterdir() if p.name.endswith(".tmp") or ".tmp." in p.name]
    assert not partial, f"partial files left in the cache: {partial}"


@pytest.fixture
def world_readable_tmp() -> Iterator[Path]:
    """A directory another user can read and write (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="sl-sharing-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_two_users_read_one_remote_at_once(world_readable_tmp: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("running a child as another Unix user needs root; this run is not root")
    try:
        other = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no 'nobody' user on this machine to run the second job as")
    data = _write(world_readable_tmp / "data")
    subprocess.run(["chmod", "-R", "a+rX", data], check=True)
    job = {**JOBS[0], "data": data, "default_cache": True, "epochs": 1}
    mine = world_readable_tmp / "root-cache"
    shm_before = _shm_names()
    root_out, other_out = world_readable_tmp / "root.json", world_readable_tmp / "other.json"
    procs = [  # root's default cache set by its environment; the other user gets its own
        _start({**job, "out": str(root_out)}, STREAMING_LIGHTNING_CACHE=str(mine)),
        _start({**job, "out": str(other_out)}, user="nobody"),
    ]
    _finish(procs)
    assert _order(root_out) == _order(other_out), "both users read the same samples, in order"
    other_root = Path(tempfile.gettempdir()) / "streaming-lightning-nobody"
    other_caches = [p for p in other_root.iterdir() if p.stat().st_uid == other.pw_uid]
    assert other_caches, f"the second user's cache is not under {other_root}"
    assert all(p.stat().st_uid == 0 for p in mine.iterdir()), "root's cache is root's alone"
    assert not (_shm_names() - shm_before), "nothing named in /dev/shm outlives the jobs"
    # Pointed at root's cache on purpose, the other user gets an error that says what to do.
    trespass = world_readable_tmp / "trespass.json"
    proc = _start(
        {**job, "cache": str(next(mine.iterdir())), "default_cache": False, "out": str(trespass)},
        user="nobody",
    )
    _, err = proc.communicate(timeout=300)
    assert proc.returncode != 0 and "is not writable by user nobody" in err, err[-2000:]
    for cache in other_caches:  # leave the machine as we found it
        shutil.rmtree(cache, ignore_errors=True)
