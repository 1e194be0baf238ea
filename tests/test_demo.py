"""`make demo` keeps working: convert, train, SIGKILL mid-epoch, resume, identical losses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "recipes.demo",
            "--out",
            str(tmp_path / "demo"),
            "--images",
            "640",
            "--epochs",
            "2",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "losses identical              yes, every step" in proc.stdout
    assert "restored at step 15" in proc.stdout  # 10 steps an epoch: mid-way through the 2nd
    assert (tmp_path / "demo" / "loss.png").stat().st_size > 10_000
