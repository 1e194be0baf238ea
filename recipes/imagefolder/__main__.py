"""``python -m recipes.imagefolder convert --in ROOT --out DIR_OR_URL [...]`` (also
``streaming-lightning convert imagefolder ...``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from recipes.common.cli import run_command
from recipes.common.convert import add_write_arguments, write_options
from recipes.imagefolder.convert import convert


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recipes.imagefolder", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    conv = commands.add_parser("convert", help="root/<class>/<image> -> MDS")
    conv.add_argument("--in", dest="raw", required=True, help="the folder of class folders")
    conv.add_argument("--split", default=None, help="subfolder of --out to write (default none)")
    add_write_arguments(conv)
    args = parser.parse_args(argv)
    return run_command(lambda: convert(args.raw, write_options(args), split=args.split))


if __name__ == "__main__":
    sys.exit(main())
