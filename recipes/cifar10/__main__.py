"""``python -m recipes.cifar10 convert --in RAW --out DIR_OR_URL [...]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from recipes.cifar10.convert import IMAGE_FORMATS, convert
from recipes.common.cli import run_command
from recipes.common.convert import add_write_arguments, write_options


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recipes.cifar10", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    conv = commands.add_parser(
        "convert", help="official python batches (cifar-10-batches-py) -> MDS train/ and test/"
    )
    conv.add_argument("--in", dest="raw", required=True, help="the cifar-10-batches-py folder")
    conv.add_argument("--image-format", choices=IMAGE_FORMATS, default="raw")
    add_write_arguments(conv)
    args = parser.parse_args(argv)
    return run_command(
        lambda: convert(args.raw, write_options(args), image_format=args.image_format)
    )


if __name__ == "__main__":
    sys.exit(main())
