"""``python -m recipes.hf convert --in SAVED_DATASET --out DIR_OR_URL [...]`` (also
``streaming-lightning convert hf ...``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from recipes.common.cli import run_command
from recipes.common.convert import add_write_arguments, write_options
from recipes.hf.convert import convert
from recipes.parquet.convert import parse_columns


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recipes.hf", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    conv = commands.add_parser("convert", help="a datasets dataset saved to disk -> MDS")
    conv.add_argument("--in", dest="raw", required=True, help="the save_to_disk folder")
    conv.add_argument(
        "--columns", default=None, help="NAME=ENCODING,... to set or override encodings"
    )
    conv.add_argument(
        "--split", default=None, help="comma-separated splits of a DatasetDict (default: all)"
    )
    add_write_arguments(conv)
    args = parser.parse_args(argv)
    return run_command(
        lambda: convert(
            args.raw,
            write_options(args),
            columns=parse_columns(args.columns),
            splits=[s for s in (args.split or "").split(",") if s] or None,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
