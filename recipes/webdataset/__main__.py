"""``python -m recipes.webdataset convert --in TAR_OR_DIR --out DIR_OR_URL [...]`` (also
``streaming-lightning convert webdataset ...``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from recipes.common.cli import run_command
from recipes.common.convert import add_write_arguments, write_options
from recipes.parquet.convert import parse_columns
from recipes.webdataset.convert import convert


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recipes.webdataset", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    conv = commands.add_parser("convert", help="webdataset tar shards -> MDS")
    conv.add_argument("--in", dest="raw", required=True, help="a .tar file or a folder of them")
    conv.add_argument(
        "--columns", default=None, help="EXT=ENCODING,... to override encodings (e.g. jpg=jpeg)"
    )
    conv.add_argument("--split", default=None, help="subfolder of --out to write (default none)")
    add_write_arguments(conv)
    args = parser.parse_args(argv)
    return run_command(
        lambda: convert(
            args.raw, write_options(args), columns=parse_columns(args.columns), split=args.split
        )
    )


if __name__ == "__main__":
    sys.exit(main())
