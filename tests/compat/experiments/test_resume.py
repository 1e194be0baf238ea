"""Experiment 4 at reduced size, through the real runner: every library that can resume is
timed at every position (and the case counts the samples left after each resume), and the
figure and report carry the numbers."""

from __future__ import annotations

import pytest

from tests.compat.experiments.conftest import QuickRun

pytestmark = [pytest.mark.compat, pytest.mark.experiments]
OURS = "streaming-lightning"


def test_every_resumable_library_is_timed_at_every_position(run_quick: QuickRun) -> None:
    from experiments import resume

    results, out = run_quick("resume")
    meta, positions = results["meta"], results["positions"]
    assert meta["count_remaining"], "the quick size checks the exact samples left"
    assert [float(at) for at in positions] == meta["positions"]
    for at, position in positions.items():
        assert position["failed"] == {}, at
        assert set(position["libraries"]) == set(meta["libraries"]), at
        for library, measured in position["libraries"].items():
            assert len(measured["runs"]) == meta["repeats"]
            assert 0 < measured["median"] < meta["timeout_s"], (at, library)
        assert position["consumed"] == int(meta["samples"] * float(at)) // 256 * 256
    assert "webdataset" in meta["not_run"] and "webdataset" not in meta["libraries"]

    png = out / "resume.png"
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
    report = (out / "experiments.md").read_text()
    assert "resume.png" in report and "python -m experiments resume --quick" in report
    headline = resume.headline(results)
    assert headline in report and "webdataset cannot resume" in headline
    ours = [p["libraries"][OURS]["median"] for p in positions.values()]
    assert f"{min(ours):.2f}" in headline
    for position in positions.values():
        for measured in position["libraries"].values():
            assert f"{measured['median']:.3f}" in report
