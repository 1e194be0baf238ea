"""``python -m recipes.parquet convert --in FILE_OR_DIR --out DIR_OR_URL [...]`` (also
``streaming-lightning convert parquet ...``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from recipes.common.convert import comma_list, converter_main
from recipes.parquet.convert import add_columns_argument, convert, parse_columns


def _extra(parser: argparse.ArgumentParser) -> None:
    add_columns_argument(parser, "NAME=ENCODING,... to set or override encodings (e.g. meta=json)")
    parser.add_argument("--select", default=None, help="comma-separated columns to keep")


def main(argv: Sequence[str] | None = None) -> int:
    return converter_main(
        argv,
        package="parquet",
        description=__doc__,
        what="parquet file(s) -> MDS",
        input_help="a parquet file or a folder of them",
        extra=_extra,
        run=lambda args, options: convert(
            args.raw,
            options,
            columns=parse_columns(args.columns),
            select=comma_list(args.select),
            split=args.split,
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
