"""English Wikipedia text dump → MDS, as documents or as packed token sequences.

Input: the folder mosaicml-streaming's ``enwiki_text`` converter reads (the MLCommons BERT
preprocessing of the 2020-01-01 dump): ``part-00000-of-00500`` … ``part-00499-of-00500`` for
training and ``eval.txt`` for evaluation, UTF-8 text files with one document per non-empty
line. Any subset of the train parts converts (a missing part is reported, not fatal — useful
for trying the recipe on a few files); ``eval.txt`` is optional.

``--mode text`` writes ``<out>/train`` and ``<out>/val`` with one column ``text: str``, each
line stripped of surrounding whitespace and blank lines skipped — exactly the samples
mosaicml-streaming's converter writes, so either library reads the other's output.
``--mode tokens`` packs the tokenised documents of each file into ``--seq-len`` sequences; the
modes, tokenizers and resuming are shared with C4 (:mod:`recipes.common.text_convert`).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from typing import Any

from recipes.common.convert import WriteOptions
from recipes.common.text_convert import (
    TextOptions,
    convert_corpus,
)
from streaming_lightning.errors import ConfigError

#: Output splits, named as mosaicml-streaming's converter names them.
SPLITS = ("train", "val")
TRAIN_PATTERN = re.compile(r"^part-(\d{5})-of-(\d{5})$")
EVAL_BASENAME = "eval.txt"
TEXT_COLUMNS = {"text": "str"}
#: Line breaks text mode knows besides "\n" (which ends every line a binary file yields).
_CARRIAGE_RETURN = re.compile("\r\n?")


def find_files(raw: str) -> dict[str, list[str]]:
    """Each split's files under ``raw``: the train parts in number order, and eval.txt."""
    if not os.path.isdir(raw):
        raise ConfigError(
            f"--in {raw}: no such folder (give the folder holding part-00000-of-00500 ...)."
        )
    names = sorted(os.listdir(raw))
    parts = [(name, TRAIN_PATTERN.match(name)) for name in names]
    train = [(int(m.group(1)), int(m.group(2)), name) for name, m in parts if m]
    found = {
        "train": [os.path.join(raw, name) for _, _, name in sorted(train)],
        "val": [os.path.join(raw, EVAL_BASENAME)] if EVAL_BASENAME in names else [],
    }
    if not any(found.values()):
        raise ConfigError(
            f"No EnWiki files in {raw}: expected part-00000-of-00500 ... part-00499-of-00500 "
            f"and {EVAL_BASENAME} (the text dump mosaicml-streaming's enwiki converter reads)."
        )
    totals = {total for _, total, _ in train}
    if len(totals) > 1:
        raise ConfigError(
            f"{raw} mixes parts of different dumps (part-*-of-{sorted(totals)}); keep one."
        )
    if train and len(train) != next(iter(totals)):
        print(
            f"{raw}: converting {len(train)} of the dump's {next(iter(totals))} train parts",
            file=sys.stderr,
        )
    return found


def read_documents(path: str) -> Iterator[dict[str, str]]:
    """The documents of one file: its non-empty lines, stripped — lines as Python's text mode
    splits them (``\n``, ``\r\n`` and a lone ``\r``), as mosaicml-streaming reads them. A
    line that is not UTF-8 raises a ConfigError naming the file and the line."""
    number = 0
    try:
        with open(path, "rb") as file:
            for data in file:  # bytes, decoded line by line: an error names its line
                number += 1
                try:
                    line = data.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise ConfigError(
                        f"{path}, line {number}: not UTF-8 text ({err.reason}); EnWiki parts "
                        "are UTF-8 text, one document a line — download or extract it again."
                    ) from None
                for piece in _CARRIAGE_RETURN.split(line):
                    text = piece.strip()
                    if text:
                        yield {"text": text}
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the file ({err}).") from None


def convert(raw: str, options: WriteOptions, text: TextOptions | None = None) -> dict[str, Any]:
    """Convert the train parts and eval.txt found in ``raw``; returns {split: merged index},
    plus the tokenizer and its vocabulary size in tokens mode or with a BPE."""
    return convert_corpus(
        find_files(raw),
        read_documents,
        TEXT_COLUMNS,
        options,
        text or TextOptions(),
        train_split="train",
        what=f"part-NNNNN-of-NNNNN train files in {raw}",
    )
