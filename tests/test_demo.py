"""`make demo` keeps working: it writes, streams as 2 ranks x 2 workers, and resumes exactly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "streaming_lightning.demo",
            "--samples",
            "3000",
            "--out",
            str(tmp_path / "ds"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "every sample present" in proc.stdout
    assert "exactly the original order" in proc.stdout
