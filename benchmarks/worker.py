"""Subprocess entry point: ``python -m benchmarks.worker CASE LIBRARY PARAMS_JSON``.

Runs one measurement and prints its metrics as one JSON line (the harness reads the last line).
"""

from __future__ import annotations

import importlib
import json
import sys

from benchmarks.libraries import Unsupported


def main() -> None:
    case, library, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    module = importlib.import_module(f"benchmarks.cases.{case}")
    try:
        metrics = module.run(library, params)
    except Unsupported as missing:
        print(f"unsupported: {missing}", file=sys.stderr)
        metrics = None
    print(json.dumps(metrics))


if __name__ == "__main__":
    main()
