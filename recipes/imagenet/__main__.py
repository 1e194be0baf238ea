"""``python -m recipes.imagenet convert --in RAW --out DIR_OR_URL [...]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from recipes.common.cli import run_command
from recipes.common.convert import add_write_arguments, write_options
from recipes.imagenet.convert import convert


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recipes.imagenet", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    conv = commands.add_parser(
        "convert",
        help="train/<wnid>/*.JPEG and val/<wnid>/*.JPEG -> MDS train/ and val/ + classes.json",
    )
    conv.add_argument(
        "--in", dest="raw", required=True, help="the ImageNet root holding train/ and val/"
    )
    add_write_arguments(conv)
    args = parser.parse_args(argv)
    return run_command(lambda: convert(args.raw, write_options(args)))


if __name__ == "__main__":
    sys.exit(main())
