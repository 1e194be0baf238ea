"""Run an experiment at reduced size through the real runner, in a temp folder with its own
benchmark data cache (so the run builds its datasets, as CI's first run does)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_peer

ROOT = Path(__file__).resolve().parents[3]

QuickRun = Callable[[str], tuple[dict[str, Any], Path]]


@pytest.fixture
def run_quick(tmp_path: Path) -> QuickRun:
    """``python -m experiments NAME --quick --out DIR``: the results and DIR (which also holds
    the PNG and the report, experiments.md)."""
    for peer in ("streaming", "litdata", "webdataset"):
        require_peer(peer)

    def run(name: str) -> tuple[dict[str, Any], Path]:
        out = tmp_path / "figures"
        subprocess.run(
            [sys.executable, "-m", "experiments", name, "--quick", "--out", str(out)],
            check=True,
            cwd=ROOT,
            env={**os.environ, "SL_BENCH_DATA": str(tmp_path / "data")},
            timeout=600,
        )
        return json.loads((out / f"{name}.json").read_text()), out

    return run
