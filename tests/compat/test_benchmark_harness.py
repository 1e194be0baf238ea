"""The benchmark harness runs end to end (small inputs) and reports a ratio for every row."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import require_peer

require_peer("streaming")


def test_write_benchmark_quick_run(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "write",
            "--quick",
            "--repeats",
            "1",
            "--results",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=Path(__file__).parents[2],
    )
    assert proc.returncode == 0, proc.stderr
    assert "x vs mosaicml-streaming" in proc.stdout
    rows = json.loads((tmp_path / "write-quick.json").read_text())["rows"]
    assert len(rows) == 4
    for row in rows:
        assert set(row["median"]) == {"streaming-lightning", "mosaicml-streaming"}
        assert all(value > 0 for value in row["median"].values())
    assert (tmp_path / "write-quick.png").stat().st_size > 1000
