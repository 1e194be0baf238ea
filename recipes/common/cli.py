"""Running a recipe command: user mistakes end with a one-line error and exit code 2, no
traceback; the outputs are printed one per line."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from streaming_lightning.errors import StreamingError


def run_command(action: Callable[[], Any]) -> int:
    try:
        result = action()
    except (StreamingError, FileNotFoundError, NotADirectoryError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130
    if isinstance(result, dict):
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0
