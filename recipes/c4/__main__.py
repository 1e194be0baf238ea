"""``python -m recipes.c4 convert --in RAW --out DIR_OR_URL [--mode text|tokens] [...]`` and
``python -m recipes.c4 train-tokenizer --in RAW --out tokenizer.json [--vocab-size N]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from recipes.c4.convert import convert, train_tokenizer
from recipes.common.cli import run_command
from recipes.common.convert import add_write_arguments, write_options
from recipes.common.text_convert import (
    DEFAULT_TRAIN_DOCUMENTS,
    DEFAULT_VOCAB_SIZE,
    TextOptions,
    add_text_arguments,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recipes.c4", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    conv = commands.add_parser(
        "convert", help="allenai/c4 en/ json.gz files -> MDS train/ and validation/"
    )
    conv.add_argument("--in", dest="raw", required=True, help="the en/ folder of allenai/c4")
    add_text_arguments(conv)
    add_write_arguments(conv)
    train = commands.add_parser(
        "train-tokenizer", help="train the recipe's byte-level BPE on the first train documents"
    )
    train.add_argument("--in", dest="raw", required=True, help="the en/ folder of allenai/c4")
    train.add_argument("--out", required=True, help="where to write tokenizer.json (path or URL)")
    train.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB_SIZE)
    train.add_argument("--train-documents", type=int, default=DEFAULT_TRAIN_DOCUMENTS)
    train.add_argument("--force", action="store_true", help="replace an existing --out")
    args = parser.parse_args(argv)
    if args.command == "train-tokenizer":
        return run_command(
            lambda: train_tokenizer(
                args.raw, args.out, args.vocab_size, args.train_documents, force=args.force
            )
        )
    return run_command(lambda: convert(args.raw, write_options(args), TextOptions.from_args(args)))


if __name__ == "__main__":
    sys.exit(main())
