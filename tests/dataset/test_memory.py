"""Bounded memory (issue #11, guarantee 4): a process's memory grows with the number of shards
only by a fixed per-shard cost, and not at all with the number of epochs it streams.

Measured in fresh subprocesses (``tests.dataset.memory_probe``) so the figures are not the test
runner's, with USS (memory unique to a process: what a worker really adds) next to RSS.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Documented in docs/reliability.md: bytes of memory per shard listed in the index, per process
#: (measured: ~250 B in the main process, most of it the epoch plan's 10 samples per shard, and
#: ~100 B per worker; it was ~2,800 B and ~1,000 B before the index became a shared table).
PER_SHARD_BYTES = 1024
#: Growth allowed over a long run, per epoch, summed over the main process and its workers.
SLOPE_BYTES_PER_EPOCH = 16 * 1024


def probe(tmp_path: Path, **config: Any) -> dict[str, Any]:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.dataset.memory_probe",
            json.dumps({"tmp": str(tmp_path), **config}),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps(result))
    return result


@pytest.mark.slow
def test_memory_per_shard_is_bounded(tmp_path: Path) -> None:
    """1,000 vs 100,000 shards, twice at 100,000: once as the process that builds the node's
    shard table, once as one that maps the table another process built (every other rank)."""
    small = probe(tmp_path / "a", mode="shards", shards=1_000)
    builder = probe(tmp_path / "b", mode="shards", shards=100_000)
    mapper = probe(tmp_path / "b", mode="shards", shards=100_000)
    for name, large in (("builder", builder), ("mapper", mapper)):
        costs = {
            key: (large[key] - small[key]) / 99_000
            for key in ("main_rss", "main_anonymous", "worker_uss", "worker_private_anonymous")
        }
        print(name, {key: f"{value:.0f} B/shard" for key, value in costs.items()})
        assert all(cost <= PER_SHARD_BYTES for cost in costs.values()), (name, costs)


@pytest.mark.slow
def test_memory_is_flat_over_many_epochs(tmp_path: Path) -> None:
    result = probe(tmp_path, mode="epochs", epochs=60)
    print(f"slope {result['slope']:.0f} B/epoch over epochs {result['from']}..{result['to']}")
    assert result["slope"] <= SLOPE_BYTES_PER_EPOCH
