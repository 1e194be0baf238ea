"""``python -m recipes.webdataset convert --in TAR_OR_DIR --out DIR_OR_URL [...]`` (also
``streaming-lightning convert webdataset ...``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from recipes.common.convert import converter_main
from recipes.parquet.convert import add_columns_argument, parse_columns
from recipes.webdataset.convert import convert


def main(argv: Sequence[str] | None = None) -> int:
    return converter_main(
        argv,
        package="webdataset",
        description=__doc__,
        what="webdataset tar shards -> MDS",
        input_help="a .tar file or a folder of them",
        extra=lambda parser: add_columns_argument(
            parser, "EXT=ENCODING,... to override encodings (e.g. jpg=jpeg)"
        ),
        run=lambda args, options: convert(
            args.raw, options, columns=parse_columns(args.columns), split=args.split
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
