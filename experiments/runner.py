"""Run experiments and write their evidence: ``python -m experiments [NAME ...] [--quick]``.

An experiment runs in the virtualenv its libraries live in; from the other one, this module
re-invokes itself there. Results are written atomically as ``<out>/<name>.json`` with the
machine, package versions, command and wall time, then plotted to ``<out>/<name>.png``. The
report (``docs/experiments.md`` and the README block between the experiments markers) is
rebuilt from the JSON files only, never from numbers typed in.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from experiments.registry import EXPERIMENTS, Experiment, Venv

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FIGURES = DOCS / "figures"
VENV_DIRS: dict[Venv, Path] = {"main": ROOT / ".venv", "compat": ROOT / ".venv-compat"}
PACKAGES = (
    "streaming-lightning",
    "torch",
    "lightning",
    "numpy",
    "pillow",
    "scikit-learn",
    "mosaicml-streaming",
    "litdata",
    "webdataset",
)


def current_venv() -> Venv:
    return "compat" if Path(sys.prefix).resolve() == VENV_DIRS["compat"].resolve() else "main"


def versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for package in PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.machine(),
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Temp file + rename: an interrupted run never leaves a half-written result behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    os.replace(tmp, path)


def command_line(name: str, quick: bool) -> str:
    return f"python -m experiments {name}" + (" --quick" if quick else "")


def run_here(experiment: Experiment, quick: bool, out: Path) -> dict[str, Any]:
    module = experiment.module
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"sl-exp-{experiment.name}-") as work:
        results = module.run(quick, Path(work))
    results["run"] = {
        "command": command_line(experiment.name, quick),
        "quick": quick,
        "seconds": round(time.perf_counter() - started, 1),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine(),
        "versions": versions(),
    }
    write_json(out / f"{experiment.name}.json", results)
    module.plot(results, out / f"{experiment.name}.png")
    return results


def run_elsewhere(experiment: Experiment, quick: bool, out: Path) -> None:
    python = VENV_DIRS[experiment.venv] / "bin" / "python"
    if not python.exists():
        target = "compat-venv" if experiment.venv == "compat" else "install"
        raise SystemExit(
            f"Experiment {experiment.name!r} runs in {VENV_DIRS[experiment.venv]}, which does "
            f"not exist: run `make {target}` (or `make experiments`, which builds it)."
        )
    cmd = [str(python), "-m", "experiments", experiment.name, "--out", str(out), "--no-report"]
    if quick:
        cmd.append("--quick")
    subprocess.run(cmd, check=True, cwd=ROOT)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m experiments", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"any of {', '.join(EXPERIMENTS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="reduced sizes (the CI test)")
    parser.add_argument("--out", type=Path, default=FIGURES, help="where JSON and PNGs go")
    parser.add_argument("--no-report", action="store_true", help="skip writing the markdown")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in EXPERIMENTS]
    if unknown:
        parser.error(f"unknown experiment(s) {unknown}; choose from {list(EXPERIMENTS)}")
    out = args.out.resolve()
    for name in args.names or list(EXPERIMENTS):
        experiment = EXPERIMENTS[name]
        print(f"== experiment {name} ({experiment.venv} venv)", flush=True)
        started = time.perf_counter()
        if experiment.venv == current_venv():
            run_here(experiment, args.quick, out)
        else:
            run_elsewhere(experiment, args.quick, out)
        print(f"== {name} done in {time.perf_counter() - started:.0f} s", flush=True)
    if not args.no_report:
        from experiments.report import write_report

        for path in write_report(out, readme=out == FIGURES.resolve()):
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
