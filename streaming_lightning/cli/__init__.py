"""``streaming-lightning`` command line: look at, fetch, check and plan datasets.

One module per command; each has ``register(commands)`` (its arguments and help) and
``run(args) -> exit code``. User mistakes end as one ``error: ...`` line and exit code 2, never
a traceback. Training runs through ``train.py``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from streaming_lightning.cli import (
    cache,
    convert,
    download,
    ls,
    merge_index,
    simulate,
    summary,
    verify,
)
from streaming_lightning.cli._common import USER_ERRORS
from streaming_lightning.cli.summary import summarize

__all__ = ["build_parser", "main", "summarize"]

COMMANDS = (summary, ls, download, merge_index, convert, verify, cache, simulate)

USAGE = """Look at, fetch, check and plan streaming datasets (MDS, CSV/TSV, JSON lines).

examples:
    streaming-lightning inspect s3://bucket/dataset [--split train]
    streaming-lightning ls s3://bucket/prefix
    streaming-lightning download s3://bucket/dataset /local/dir [--workers 16 --validate-hash xxh64]
    streaming-lightning merge-index s3://bucket/out [INDEX_URL ...]
    streaming-lightning convert cifar10 --in RAW --out s3://bucket/cifar10
    streaming-lightning verify s3://bucket/dataset [--workers 8]
    streaming-lightning cache ls | cache clean --older-than 30 [--dry-run]
    streaming-lightning simulate s3://bucket/dataset --nodes 8 --devices-per-node 8 \\
        --workers 8 --batch-size 32 [--shuffle]

Run `streaming-lightning COMMAND --help` for a command's options.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streaming-lightning",
        description=USAGE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit code (0 ok, 1 check failed, 2 usage error)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except USER_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
