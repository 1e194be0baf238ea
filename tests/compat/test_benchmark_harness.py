"""The benchmark harness runs end to end (small inputs) and reports a ratio for every row."""

from __future__ import annotations

import json
import os
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


QUICK = ["--quick", "--repeats", "1", "--results"]


def _quick(tmp_path: Path, *cases: str) -> str:
    env = {**os.environ, "SL_BENCH_DATA": str(tmp_path / "data")}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", *cases, *QUICK, str(tmp_path / "results")],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=Path(__file__).parents[2],
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    return proc.stdout


def test_reading_cases_measure_every_library(tmp_path: Path) -> None:
    require_peer("litdata")
    require_peer("webdataset")
    out = _quick(tmp_path, "iterate", "loader", "random_access", "resume")
    for peer in ("mosaicml-streaming", "litdata", "webdataset"):
        assert f"x vs {peer}" in out
    results = tmp_path / "results"
    iterate = json.loads((results / "iterate-quick.json").read_text())["rows"]
    for row in iterate:
        expected = {"streaming-lightning", "mosaicml-streaming", "litdata", "webdataset"}
        if row["params"]["kind"] == "image" and not row["params"]["shuffle"]:
            expected.add("raw-read")  # the physical limit: sequential only
        assert set(row["median"]) == expected, row["params"]
    access = json.loads((results / "random_access-quick.json").read_text())["rows"]
    assert "webdataset" not in access[0]["median"]  # no random access: shown as '-'
    loader = json.loads((results / "loader-quick.json").read_text())["rows"]
    assert {row["metric"] for row in loader} == {
        "samples_per_s",
        "main_rss_mb",
        "worker_rss_mb",
        "shm_mb",
    }
    for name in ("iterate", "loader", "random_access", "resume"):
        assert (results / f"{name}-quick.png").stat().st_size > 1000


def test_recipe_convert_case_measures_both_converters(tmp_path: Path) -> None:
    require_peer("streaming")
    out = _quick(tmp_path, "recipe_convert")
    assert "x vs mosaicml-streaming" in out
    rows = json.loads((tmp_path / "results" / "recipe_convert-quick.json").read_text())["rows"]
    assert {row["params"]["recipe"] for row in rows} == {"enwiki", "pile"}
    for row in rows:
        assert set(row["median"]) == {"streaming-lightning", "mosaicml-streaming"}, row["params"]
        assert all(value > 0 for value in row["median"].values())
