"""Run benchmark cases for every library in the same run and report ours/peer ratios.

Each (case, parameters, library, repetition) runs in a fresh subprocess, so one library's
imports, caches or threads cannot affect another's. Libraries alternate order across
repetitions (ABAB... then BABA...) so slow drift of the machine hits all of them equally, and
the median of the repetitions is reported.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

OURS = "streaming-lightning"


@dataclass
class Metric:
    name: str
    unit: str
    higher_is_better: bool = True


@dataclass
class CaseSpec:
    """A benchmark case: a module under benchmarks.cases with ``run(library, params)``."""

    name: str
    libraries: list[str]
    params: list[dict[str, Any]]
    metrics: list[Metric]
    quick_params: list[dict[str, Any]] = field(default_factory=list)
    timeout: float = 300  # seconds one run may take before the library counts as hung


class PeerFailure(Exception):
    """A peer library crashed or hung on a case: reported in the table, not fatal."""


def run_once(
    case: str, library: str, params: dict[str, Any], timeout: float
) -> dict[str, float] | None:
    """One measurement in a fresh interpreter (its own process group, so a hung library's
    DataLoader workers die with it); returns the metrics the case printed, or None where the
    library lacks the feature. Ours failing is an error; a peer failing is a PeerFailure."""
    cmd = [sys.executable, "-m", "benchmarks.worker", case, library, json.dumps(params)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        message = f"{case}/{library} {params} hung: no result after {timeout:.0f} s"
        if library == OURS:
            raise RuntimeError(message) from None
        raise PeerFailure(f"hung >{timeout:.0f}s") from None
    if proc.returncode != 0:
        if library == OURS:
            raise RuntimeError(f"{case}/{library} {params} failed:\n{stderr[-3000:]}")
        last_line = (stderr.strip().splitlines() or ["?"])[-1]
        print(f"  {library} failed on {case} {params}: {last_line}", file=sys.stderr)
        raise PeerFailure("error")
    last = json.loads(stdout.strip().splitlines()[-1])
    if last is None:
        return None
    return {k: float(v) for k, v in last.items()}


def run_case(
    spec: CaseSpec,
    *,
    repeats: int,
    quick: bool,
    timeout: float | None = None,
    environment: Callable[[dict[str, Any]], AbstractContextManager[dict[str, Any]]] | None = None,
) -> list[dict[str, Any]]:
    """Measure every parameter set. ``environment(params)``, if given, is entered once per
    parameter set in this process (e.g. to start a storage server and upload the data) and
    yields extra parameters for the workers."""
    rows: list[dict[str, Any]] = []
    for params in spec.quick_params if quick and spec.quick_params else spec.params:
        samples: dict[str, list[dict[str, float]]] = {lib: [] for lib in spec.libraries}
        failed: dict[str, str] = {}
        with environment(params) if environment else nullcontext({}) as extra:
            for rep in range(repeats):
                order = spec.libraries if rep % 2 == 0 else list(reversed(spec.libraries))
                for library in order:
                    if library in failed:
                        continue  # one hang per library and parameter set is enough
                    run_params = {**params, **extra}
                    try:
                        result = run_once(spec.name, library, run_params, timeout or spec.timeout)
                    except PeerFailure as failure:
                        failed[library] = str(failure)
                        continue
                    if result is not None:
                        samples[library].append(result)
        samples = {lib: runs for lib, runs in samples.items() if runs and lib not in failed}
        for metric in spec.metrics:
            medians = {
                lib: statistics.median(r[metric.name] for r in runs)
                for lib, runs in samples.items()
            }
            rows.append(
                {
                    "case": spec.name,
                    "params": params,
                    "metric": metric.name,
                    "unit": metric.unit,
                    "higher_is_better": metric.higher_is_better,
                    "median": medians,
                    "runs": {lib: [r[metric.name] for r in runs] for lib, runs in samples.items()},
                    "failed": failed,
                }
            )
    return rows


def ratio(row: dict[str, Any], peer: str) -> float:
    """How many times better ours is than ``peer`` (>1 means we win)."""
    ours, theirs = row["median"][OURS], row["median"][peer]
    if row["higher_is_better"]:
        return ours / theirs if theirs else float("inf")
    return theirs / ours if ours else float("inf")


def figure(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def format_table(rows: list[dict[str, Any]]) -> str:
    peers = sorted(
        {lib for row in rows for lib in [*row["median"], *row.get("failed", {})]} - {OURS}
    )
    header = ["case", "params", "metric", OURS, *peers, *[f"x vs {p}" for p in peers]]
    lines = [header]
    for row in rows:
        params = " ".join(f"{k}={v}" for k, v in row["params"].items())
        failed = row.get("failed", {})
        values = [failed.get(lib) or figure(row["median"].get(lib)) for lib in (OURS, *peers)]
        ratios = [f"{ratio(row, p):.2f}x" if p in row["median"] else "-" for p in peers]
        lines.append([row["case"], params, f"{row['metric']} ({row['unit']})", *values, *ratios])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        out.append(" | ".join(cell.ljust(w) for cell, w in zip(line, widths)))
        if n == 0:
            out.append("-+-".join("-" * w for w in widths))
    return "\n".join(out)


def save(rows: list[dict[str, Any]], results_dir: str, name: str) -> tuple[str, str | None]:
    """Write rows as JSON and a bar chart PNG of the ratios; return their paths."""
    os.makedirs(results_dir, exist_ok=True)
    json_path = os.path.join(results_dir, f"{name}.json")
    meta = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }
    with open(json_path, "w") as file:
        json.dump({"meta": meta, "rows": rows}, file, indent=1)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return json_path, None
    peers = sorted({lib for row in rows for lib in row["median"]} - {OURS})
    labels = [
        f"{row['case']}\n{' '.join(f'{v}' for v in row['params'].values())}\n{row['metric']}"
        for row in rows
    ]
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(rows)), 4.5))
    width = 0.8 / max(1, len(peers))
    for i, peer in enumerate(peers):
        values = [ratio(row, peer) if peer in row["median"] else 0 for row in rows]
        ax.bar([x + i * width for x in range(len(rows))], values, width, label=f"vs {peer}")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks([x + width * (len(peers) - 1) / 2 for x in range(len(rows))], labels, fontsize=7)
    ax.set_ylabel(f"{OURS} speed-up (x, >1 = faster)")
    ax.set_title(f"{name}: {OURS} vs peers (median of runs)")
    ax.legend()
    fig.tight_layout()
    png_path = os.path.join(results_dir, f"{name}.png")
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return json_path, png_path
