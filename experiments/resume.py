"""Experiment 4: how long a restarted job waits, against where in the epoch it stopped.

The ``resume`` benchmark case (``benchmarks/cases/resume.py``) at 10M small samples (a 128-token
uint16 array and an int label each; MDS shared by ours and mosaicml-streaming, litdata's own
chunks): construct the dataset, hand it the checkpoint's state for a position 10%, 50% or 90%
into a shuffled epoch, take the first sample; the clock covers all three. Run through the
benchmark harness: each run in a fresh process, libraries alternating order, the median of 3.

webdataset keeps no position: its users resume by skipping the consumed samples, which at 10M
means reading up to 9M samples first (minutes per run at its rate). It is not run here; the
summary says so. At 10M the case checks the first resumed batch only (distinct, valid samples):
counting the millions left would take mosaicml-streaming many minutes per run. The quick size
counts them exactly (``count_remaining``), which is what CI runs.

The datasets are cached in the benchmark data directory (``$SL_BENCH_DATA``); the first run
builds them (the two formats in parallel) and its record shows how long that took.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks import data
from benchmarks.cases import resume as case
from benchmarks.harness import OURS, run_case
from benchmarks.libraries import get
from experiments import peers

LIBRARIES = ["streaming-lightning", "mosaicml-streaming", "litdata"]
NOT_RUN = {
    "webdataset": (
        "keeps no position: its users resume by skipping the consumed samples (reading them), "
        "so its wait grows with the position; not run at this size"
    )
}
KIND = "tokens"
SIZE, QUICK_SIZE = 10_000_000, 50_000
POSITIONS, QUICK_POSITIONS = (0.1, 0.5, 0.9), (0.1, 0.9)
REPEATS, QUICK_REPEATS = 3, 1
TIMEOUT = 300  # seconds one run may take before the library counts as hung


def settings(quick: bool) -> dict[str, Any]:
    return {
        "kind": KIND,
        "samples": QUICK_SIZE if quick else SIZE,
        "positions": list(QUICK_POSITIONS if quick else POSITIONS),
        "repeats": QUICK_REPEATS if quick else REPEATS,
        # Exact remaining-sample count only where every library can iterate the rest quickly.
        "count_remaining": quick,
        "sample_bytes": data.payload_bytes(KIND, 1),
        "batch_size": case.BATCH,
        "libraries": LIBRARIES,
        "not_run": NOT_RUN,
        "shuffle": "each library's default algorithm and seed, shuffle=True",
        "timeout_s": TIMEOUT,
    }


def run(quick: bool, work: Path) -> dict[str, Any]:
    meta = settings(quick)
    params = [
        {
            "kind": KIND,
            "n": meta["samples"],
            "at": at,
            "count_remaining": meta["count_remaining"],
        }
        for at in meta["positions"]
    ]
    formats = sorted({get(lib).format for lib in LIBRARIES})

    seconds: list[float] = []
    spec = dataclasses.replace(
        case.SPEC, libraries=LIBRARIES, params=params, quick_params=[], timeout=TIMEOUT
    )
    rows = run_case(
        spec,
        repeats=meta["repeats"],
        quick=quick,
        environment=peers.timed(lambda _: _built(formats, meta["samples"]), seconds),
    )
    meta["formats"] = formats
    meta["data_build_s"] = seconds[0] if seconds else None  # built once: later entries find it
    positions: dict[str, dict[str, Any]] = {}
    for row in rows:
        at = f"{row['params']['at']:g}"
        positions[at] = {
            "consumed": int(meta["samples"] * row["params"]["at"]) // case.BATCH * case.BATCH,
            "libraries": peers.per_library(row),
            "failed": row["failed"],
        }
    return {"meta": meta, "positions": positions, "rows": rows}


@contextmanager
def _built(formats: list[str], n: int) -> Iterator[dict[str, Any]]:
    """The environment: the datasets of ``formats`` built (in parallel) on entry."""
    data.build(formats, KIND, n)
    yield {}


def _libraries(results: dict[str, Any]) -> list[str]:
    found = {lib for p in results["positions"].values() for lib in p["libraries"]}
    return [lib for lib in LIBRARIES if lib in found]


def _series(results: dict[str, Any], library: str) -> tuple[list[float], list[float]]:
    """(positions in %, median seconds) where ``library`` was measured."""
    xs, ys = [], []
    for at, position in results["positions"].items():
        if library in position["libraries"]:
            xs.append(float(at) * 100)
            ys.append(position["libraries"][library]["median"])
    return xs, ys


def _two_and_five(value: float, _: object) -> str:
    """Minor log-axis labels at 2x and 5x each power of ten only (the rest would crowd)."""
    mantissa = round(value / 10 ** math.floor(math.log10(value)))
    return f"{value:g}" if mantissa in (2, 5) else ""


def plot(results: dict[str, Any], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    meta = results["meta"]
    fig, ax = plt.subplots(figsize=(8, 4.8))
    for library in _libraries(results):
        xs, ys = _series(results, library)
        ax.plot(
            xs,
            ys,
            marker="o",
            color=peers.color(library),
            linewidth=2.5 if library == OURS else 1.5,
            label=peers.name(library),
        )
        for at, position in results["positions"].items():
            runs = position["libraries"].get(library, {}).get("runs", [])
            ax.scatter(
                [float(at) * 100] * len(runs), runs, color=peers.color(library), s=10, alpha=0.4
            )
        for x, y in zip(xs, ys):
            ax.annotate(f"{y:.2f} s", (x, y), xytext=(5, 5), textcoords="offset points", fontsize=8)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(_two_and_five))
    ax.tick_params(axis="y", which="minor", labelsize=7)
    ax.set_xlim(0, 100)
    ax.set_xlabel("checkpoint position in the epoch (% of samples consumed)")
    ax.set_ylabel("construct + load state → first sample (s, log scale)")
    ax.set_title(
        f"Resume latency, {meta['samples']:,} samples of {meta['sample_bytes']} bytes, shuffled "
        f"(lines: {peers.median_of(meta['repeats'])}, dots: runs)",
        fontsize=10,
    )
    ax.plot([], [], " ", label="webdataset: cannot resume (not run)")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def summary(results: dict[str, Any]) -> str:
    meta = results["meta"]
    libraries = _libraries(results)
    peers_ = [lib for lib in libraries if lib != OURS]
    header = ["position", "samples consumed", *(f"{peers.name(lib)} (s)" for lib in libraries)]
    header += [f"{peers.name(lib)} ÷ ours" for lib in peers_]
    lines = ["| " + " | ".join(header) + " |", "|" + "---:|" * len(header)]
    for at, position in results["positions"].items():
        found = position["libraries"]
        cells = [f"{float(at):.0%}", f"{position['consumed']:,}"]
        for lib in libraries:
            cells.append(
                f"{found[lib]['median']:.3f}" if lib in found else position["failed"].get(lib, "—")
            )
        for lib in peers_:
            ok = lib in found and OURS in found
            cells.append(peers.times(found[lib]["median"] / found[OURS]["median"]) if ok else "—")
        lines.append("| " + " | ".join(cells) + " |")
    runs = [
        f"{peers.name(lib)} at {float(at):.0%}: "
        + ", ".join(f"{r:.3f}" for r in position["libraries"][lib]["runs"])
        for at, position in results["positions"].items()
        for lib in libraries
        if lib in position["libraries"]
    ]
    check = (
        "every run then counted the samples left in the epoch and found exactly the number expected"
        if meta["count_remaining"]
        else "every run then checked the next batch of "
        f"{meta['batch_size']} samples (distinct samples of the dataset); counting the millions "
        "left would take mosaicml-streaming many minutes per run, so the exact count of the "
        "samples left is checked at the reduced size (`--quick`, run by the tests)"
    )
    notes = [
        "",
        f"{meta['samples']:,} samples ({meta['kind']}: 128 uint16 tokens + an int label, "
        f"{meta['sample_bytes']} bytes), "
        f"shuffled (`shuffle=True`, each library's default algorithm and seed). The clock "
        "covers constructing the dataset, loading the checkpoint's state and taking the first "
        "sample, in a fresh process with the library already imported; ours and "
        "mosaicml-streaming resume from `state_dict`/`load_state_dict`, litdata from the state "
        "its StreamingDataLoader hands the dataset. The position is rounded down to whole "
        f"batches of {meta['batch_size']}. Each cell is the {peers.median_of(meta['repeats'])}, "
        f"libraries in alternating order; {check}.",
        "",
        "Runs (s): " + "; ".join(runs) + ".",
        "",
        *(f"{peers.name(lib)}: {why}." for lib, why in meta["not_run"].items()),
    ]
    if meta["data_build_s"] is not None:
        notes.append(
            f"Building the {' and '.join(meta['formats'])} datasets took "
            f"{meta['data_build_s']:.0f} s of this run (near 0 when cached by an earlier run)."
        )
    return "\n".join(lines + notes)


def headline(results: dict[str, Any]) -> str:
    meta = results["meta"]
    parts = []
    for lib in _libraries(results):
        _, ys = _series(results, lib)
        if ys:
            span = f"{min(ys):.2f}–{max(ys):.2f} s" if len(ys) > 1 else f"{ys[0]:.2f} s"
            parts.append(f"{peers.name(lib)} {span}")
    positions = ", ".join(f"{float(at):.0%}" for at in results["positions"])
    return (
        f"Restarting mid-epoch on {meta['samples']:,} shuffled samples, the wait from "
        f"constructing the dataset with a checkpoint's state to the first sample at {positions} "
        f"of the epoch is {'; '.join(parts)} ({peers.median_of(meta['repeats'])}); webdataset cannot "
        "resume (its users skip the consumed samples) and was not run."
    )
