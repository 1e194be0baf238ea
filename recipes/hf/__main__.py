"""``python -m recipes.hf convert --in SAVED_DATASET --out DIR_OR_URL [...]`` (also
``streaming-lightning convert hf ...``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from recipes.common.convert import comma_list, converter_main
from recipes.hf.convert import convert
from recipes.parquet.convert import add_columns_argument, parse_columns


def main(argv: Sequence[str] | None = None) -> int:
    return converter_main(
        argv,
        package="hf",
        description=__doc__,
        what="a datasets dataset saved to disk -> MDS",
        input_help="the save_to_disk folder",
        split_help="comma-separated splits of a DatasetDict (default: all)",
        extra=lambda parser: add_columns_argument(
            parser, "NAME=ENCODING,... to set or override encodings"
        ),
        run=lambda args, options: convert(
            args.raw, options, columns=parse_columns(args.columns), splits=comma_list(args.split)
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
