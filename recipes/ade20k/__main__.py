"""``python -m recipes.ade20k convert --in RAW --out DIR_OR_URL [...]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from recipes.ade20k.convert import convert
from recipes.common.cli import run_command
from recipes.common.convert import add_write_arguments, write_options


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recipes.ade20k", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    conv = commands.add_parser(
        "convert",
        help="ADEChallengeData2016 images/ and annotations/ -> MDS train/ and val/",
    )
    conv.add_argument(
        "--in",
        dest="raw",
        required=True,
        help="the unzipped ADEChallengeData2016 folder (or the folder holding it)",
    )
    add_write_arguments(conv)
    args = parser.parse_args(argv)
    return run_command(lambda: convert(args.raw, write_options(args)))


if __name__ == "__main__":
    sys.exit(main())
