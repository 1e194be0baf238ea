"""``python -m recipes.webvid convert --csv CSV --videos DIR --out DIR_OR_URL [...]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from recipes.common.cli import run_command
from recipes.common.convert import add_write_arguments, write_options
from recipes.webvid.convert import convert


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recipes.webvid", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    conv = commands.add_parser(
        "convert", help="metadata CSV + <videos>/<page_dir>/<videoid>.mp4 files -> MDS <split>/"
    )
    conv.add_argument("--csv", required=True, help="the metadata CSV, e.g. results_2M_train.csv")
    conv.add_argument(
        "--videos",
        required=True,
        help="the crawl: <videos>/<page_dir>/<videoid>.mp4 (or <videos>/<videoid>.mp4)",
    )
    conv.add_argument("--split", default="train", help="output split name (default train)")
    conv.add_argument(
        "--rows-per-part",
        type=int,
        default=500,
        help="CSV rows per task (default 500); resume with the same value",
    )
    conv.add_argument(
        "--skip-bad",
        action="store_true",
        help="skip (and count) videos that do not decode instead of stopping",
    )
    add_write_arguments(conv)
    args = parser.parse_args(argv)
    return run_command(
        lambda: convert(
            args.csv,
            args.videos,
            write_options(args),
            split=args.split,
            rows_per_part=args.rows_per_part,
            skip_bad=args.skip_bad,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
