"""``python -m recipes.pile convert --in RAW --out DIR_OR_URL [--mode text|tokens] [...]``."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from recipes.common.convert import converter_main
from recipes.common.text_convert import TextOptions, add_text_arguments
from recipes.pile.convert import convert


def main(argv: Sequence[str] | None = None) -> int:
    return converter_main(
        argv,
        package="pile",
        description=__doc__,
        what="train/*.jsonl.zst, val.jsonl.zst, test.jsonl.zst -> MDS <split>/<subset>/",
        input_help="the Pile folder holding train/",
        split_help=None,
        extra=add_text_arguments,
        run=lambda args, options: convert(args.raw, options, TextOptions.from_args(args)),
    )


if __name__ == "__main__":
    sys.exit(main())
