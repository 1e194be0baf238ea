"""``python -m recipes.coco convert --in RAW --out DIR_OR_URL [--keep-empty] [--drop-crowd]
[...]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from recipes.coco.convert import Policy, convert
from recipes.common.cli import run_command
from recipes.common.convert import add_write_arguments, write_options


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recipes.coco", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    conv = commands.add_parser(
        "convert",
        help="train2017/, val2017/ and annotations/instances_*2017.json -> MDS train/ and val/ "
        "+ categories.json",
    )
    conv.add_argument(
        "--in",
        dest="raw",
        required=True,
        help="the COCO 2017 root holding annotations/, train2017/ and val2017/",
    )
    conv.add_argument(
        "--keep-empty",
        action="store_true",
        help="also convert images without boxes (default: skip them, as mosaicml-streaming's "
        "converter does)",
    )
    conv.add_argument(
        "--drop-crowd",
        action="store_true",
        help="leave out iscrowd boxes (default: keep them, as mosaicml-streaming's converter does)",
    )
    add_write_arguments(conv)
    args = parser.parse_args(argv)
    policy = Policy(keep_empty=args.keep_empty, drop_crowd=args.drop_crowd)
    return run_command(lambda: convert(args.raw, write_options(args), policy))


if __name__ == "__main__":
    sys.exit(main())
