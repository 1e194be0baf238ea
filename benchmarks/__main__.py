"""``python -m benchmarks [CASE ...] [--repeats N] [--quick]`` — run inside .venv-compat
(``make bench``), where every peer library is installed beside ours."""

from __future__ import annotations

import argparse
import importlib

from benchmarks.cases import CASES, ENGINE_CASES
from benchmarks.harness import format_table, run_case, save


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "cases", nargs="*", default=CASES, help=f"cases to run (default: all of {CASES})"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per library (median reported)")
    parser.add_argument("--quick", action="store_true", help="smaller inputs, for a smoke test")
    parser.add_argument("--results", default="benchmarks/results", help="where JSON and PNG go")
    args = parser.parse_args()
    for name in args.cases:
        if name not in CASES + ENGINE_CASES:
            parser.error(f"unknown case {name!r}; choose from {CASES + ENGINE_CASES}")
        module = importlib.import_module(f"benchmarks.cases.{name}")
        environment = getattr(module, "environment", None)
        rows = run_case(
            module.SPEC, repeats=args.repeats, quick=args.quick, environment=environment
        )
        print(format_table(rows), flush=True)
        json_path, png_path = save(rows, args.results, name + ("-quick" if args.quick else ""))
        print(f"saved {json_path}" + (f" and {png_path}" if png_path else ""))


if __name__ == "__main__":
    main()
