"""Subprocess entry point: ``python -m benchmarks.worker CASE LIBRARY PARAMS_JSON``.

Runs one measurement and prints its metrics as one JSON line (the harness reads the last line).
"""

from __future__ import annotations

import importlib
import json
import sys


def main() -> None:
    case, library, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    module = importlib.import_module(f"benchmarks.cases.{case}")
    metrics = module.run(library, params)
    print(json.dumps(metrics))


if __name__ == "__main__":
    main()
