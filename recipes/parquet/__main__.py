"""``python -m recipes.parquet convert --in FILE_OR_DIR --out DIR_OR_URL [...]`` (also
``streaming-lightning convert parquet ...``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from recipes.common.cli import run_command
from recipes.common.convert import add_write_arguments, write_options
from recipes.parquet.convert import convert, parse_columns


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recipes.parquet", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    conv = commands.add_parser("convert", help="parquet file(s) -> MDS")
    conv.add_argument("--in", dest="raw", required=True, help="a parquet file or a folder of them")
    conv.add_argument(
        "--columns",
        default=None,
        help="NAME=ENCODING,... to set or override encodings (e.g. meta=json,img=jpeg)",
    )
    conv.add_argument(
        "--select", default=None, help="comma-separated columns to keep (default: all)"
    )
    conv.add_argument("--split", default=None, help="subfolder of --out to write (default none)")
    add_write_arguments(conv)
    args = parser.parse_args(argv)
    return run_command(
        lambda: convert(
            args.raw,
            write_options(args),
            columns=parse_columns(args.columns),
            select=[c for c in (args.select or "").split(",") if c] or None,
            split=args.split,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
