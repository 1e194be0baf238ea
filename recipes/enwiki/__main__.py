"""``python -m recipes.enwiki convert --in RAW --out DIR_OR_URL [--mode text|tokens] [...]``."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from recipes.common.convert import converter_main
from recipes.common.text_convert import TextOptions, add_text_arguments
from recipes.enwiki.convert import convert


def main(argv: Sequence[str] | None = None) -> int:
    return converter_main(
        argv,
        package="enwiki",
        description=__doc__,
        what="part-NNNNN-of-00500 files and eval.txt -> MDS train/ and val/",
        input_help="the folder holding part-00000-of-00500 ...",
        split_help=None,
        extra=add_text_arguments,
        run=lambda args, options: convert(args.raw, options, TextOptions.from_args(args)),
    )


if __name__ == "__main__":
    sys.exit(main())
