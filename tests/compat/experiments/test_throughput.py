"""Experiment 3 at reduced size, through the real runner: every library reads every image, the
figure is drawn and the report's sentences carry the measured numbers."""

from __future__ import annotations

import pytest

from tests.compat.experiments.conftest import QuickRun

pytestmark = [pytest.mark.compat, pytest.mark.experiments]
OURS = "streaming-lightning"


def test_every_library_decodes_every_image_and_the_report_says_how_fast(
    run_quick: QuickRun,
) -> None:
    from experiments import throughput

    results, out = run_quick("throughput")
    meta, libraries = results["meta"], results["libraries"]
    assert set(libraries) | set(results["failed"]) == set(meta["libraries"])
    assert OURS in libraries and libraries[OURS]["images_per_s"] > 0
    assert meta["images"] == 384 and 50_000 < meta["mean_jpeg_bytes"] < 150_000
    ours = libraries[OURS]["images_per_s"]
    for library, entry in libraries.items():
        assert entry["images"] == meta["images"], library
        assert len(entry["images_per_s_runs"]) == meta["repeats"]
        assert entry["images_per_s"] > 0 and entry["epoch_s"] > 0
        assert entry["ours_ratio"] == pytest.approx(ours / entry["images_per_s"])

    png = out / "throughput.png"
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
    report = (out / "experiments.md").read_text()
    assert "throughput.png" in report and "python -m experiments throughput --quick" in report
    assert throughput.headline(results) in report
    assert f"{ours:.0f} images/s" in throughput.headline(results)
    assert f"| streaming-lightning (ours) | {ours:.0f} |" in report
    for library, entry in libraries.items():
        assert f"| {entry['images_per_s']:.0f} |" in report, library
        if library not in (OURS, meta["limit"]):
            assert f"{entry['ours_ratio']:.2f}x" in throughput.headline(results), library
