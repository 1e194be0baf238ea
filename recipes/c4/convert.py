"""allenai/c4 (the ``en/`` release) → MDS, as documents or as packed token sequences.

Input: the ``en/`` folder of https://huggingface.co/datasets/allenai/c4, or any subset of its
files — ``c4-train.00000-of-01024.json.gz`` … and ``c4-validation.00000-of-00008.json.gz`` …,
each a gzip of one JSON object per line with ``text``, ``timestamp`` and ``url``. ``--in`` is
that folder or its parent. Each split's files are converted in name order, one part per file,
into ``<out>/train`` and ``<out>/validation``.

``--mode text`` stores one sample per document: ``text``, ``timestamp``, ``url`` (str). The
tokenizer is chosen at training time (StreamingC4 tokenises on the fly). ``--mode tokens``
stores packed sequences of ``--seq-len`` tokens, packed per input file (at most seq_len - 1
tokens dropped per file, about 0.1% of a C4 file at 2048). Both modes, the tokenizers and how
a conversion resumes are shared with the other language recipes: see
:mod:`recipes.common.text_convert`.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import zlib
from collections.abc import Iterator
from typing import Any

from recipes.common.convert import WriteOptions
from recipes.common.sidecar import get_bytes, put_bytes
from recipes.common.text_convert import (
    DEFAULT_TRAIN_DOCUMENTS,
    DEFAULT_VOCAB_SIZE,
    TextOptions,
    convert_corpus,
    train_tokenizer_on,
)
from streaming_lightning.errors import ConfigError

SPLITS = ("train", "validation")
#: allenai/c4's file names (``.json`` too, for files someone has already gunzipped).
FILE_PATTERN = re.compile(r"^c4-(train|validation)\.(\d{5})-of-(\d{5})\.json(\.gz)?$")
TEXT_COLUMNS = {"text": "str", "timestamp": "str", "url": "str"}


def find_files(raw: str) -> dict[str, list[str]]:
    """Each split's C4 files under ``raw`` (the ``en/`` folder, or its parent), sorted."""
    if not os.path.isdir(raw):
        raise ConfigError(f"--in {raw}: no such folder (give the en/ folder of allenai/c4).")
    for folder in (raw, os.path.join(raw, "en")):
        if not os.path.isdir(folder):
            continue
        found: dict[str, list[str]] = {split: [] for split in SPLITS}
        for name in sorted(os.listdir(folder)):
            match = FILE_PATTERN.match(name)
            if match:
                found[match.group(1)].append(os.path.join(folder, name))
        if any(found.values()):
            return found
    raise ConfigError(
        f"No C4 files in {raw} (nor in {os.path.join(raw, 'en')}): expected "
        "c4-train.00000-of-01024.json.gz, ..., c4-validation.00000-of-00008.json.gz "
        "(the en/ folder of allenai/c4)."
    )


def _string(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    return value if isinstance(value, str) else "" if value is None else str(value)


def _document(line: str, path: str, number: int) -> dict[str, str]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise ConfigError(
            f"{path}, line {number}: not JSON ({err.msg}); C4 files hold one JSON object a "
            "line — download the file again."
        ) from None
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise ConfigError(
            f"{path}, line {number}: no 'text' string; C4 lines are objects with text, "
            "timestamp and url."
        )
    # timestamp and url are kept when present; other C4-like dumps may lack them.
    return {
        "text": record["text"],
        "timestamp": _string(record, "timestamp"),
        "url": _string(record, "url"),
    }


def read_documents(path: str) -> Iterator[dict[str, str]]:
    """The documents of one C4 file, in order. A corrupt file (bad gzip, truncated, not UTF-8,
    a line that is not a JSON object with ``text``) raises a ConfigError naming the file and
    the line, instead of a bare zlib or JSON error from a worker process."""
    opener: Any = gzip.open if path.endswith(".gz") else open
    number = 0
    try:
        with opener(path, "rt", encoding="utf-8") as file:
            for number, line in enumerate(file, 1):
                if line.strip():
                    yield _document(line, path, number)
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as err:
        raise ConfigError(
            f"{path}, line {number + 1}: cannot read the file ({err}); download it again."
        ) from None


def convert(raw: str, options: WriteOptions, text: TextOptions | None = None) -> dict[str, Any]:
    """Convert every split found under ``raw``; returns {split: merged index path/URL}, plus
    the tokenizer and its vocabulary size (the model's ``vocab_size``), and in tokens mode
    ``<split>_tokens_dropped``."""
    return convert_corpus(
        find_files(raw),
        read_documents,
        TEXT_COLUMNS,
        options,
        text or TextOptions(),
        train_split="train",
        what=f"c4-train.*.json.gz files in {raw}",
    )


def train_tokenizer(
    raw: str,
    out: str,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    documents: int = DEFAULT_TRAIN_DOCUMENTS,
    force: bool = False,
) -> dict[str, Any]:
    """Train the recipe's byte-level BPE on the first ``documents`` train documents and save
    it at ``out`` (a path or URL) — for ``convert --tokenizer PATH``, e.g. to share one
    tokenizer between several conversions."""
    if not force and get_bytes(out) is not None:
        raise ConfigError(f"{out} already exists; pass --force to replace it.")
    files = find_files(raw)["train"]
    tok = train_tokenizer_on(
        files, read_documents, vocab_size, documents, f"c4-train files in {raw}"
    )
    put_bytes(out, tok.to_str().encode())
    return {"tokenizer": out, "vocab_size": tok.vocab_size}
