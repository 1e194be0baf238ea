"""``python -m recipes.pile convert --in RAW --out DIR_OR_URL [--mode text|tokens] [...]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from recipes.common.cli import run_command
from recipes.common.convert import add_write_arguments, write_options
from recipes.common.text_convert import add_text_arguments, text_options
from recipes.pile.convert import convert


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recipes.pile", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    conv = commands.add_parser(
        "convert",
        help="train/*.jsonl.zst, val.jsonl.zst, test.jsonl.zst -> MDS <split>/<subset>/",
    )
    conv.add_argument("--in", dest="raw", required=True, help="the Pile folder holding train/")
    add_text_arguments(conv)
    add_write_arguments(conv)
    args = parser.parse_args(argv)
    return run_command(lambda: convert(args.raw, write_options(args), **text_options(args)))


if __name__ == "__main__":
    sys.exit(main())
