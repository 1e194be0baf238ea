"""Converting a text corpus (C4, EnWiki, the Pile) to MDS: documents as they are, or packed
token sequences — what every language recipe shares; each recipe only says how to find its
files and read the documents of one.

``text`` mode stores one sample per document. ``tokens`` mode stores what a language model
trains on: each document tokenised, EOS appended, the documents of one input file
concatenated and cut into sequences of exactly ``seq_len`` tokens (``ndarray:uint16:<seq_len>``,
``uint32`` for vocabularies over 65,536 ids). Packing is *per input file*: a sequence never
spans two files and each file's tail shorter than ``seq_len`` is dropped (counted as
``<split>_tokens_dropped``). That keeps the conversion parallel and deterministic — a file's
sequences depend on that file alone, so files convert in any order on any number of workers,
an interrupted conversion resumes file by file, and the output is byte-identical whatever the
worker count. Each file's counts are kept in ``<out>/<split>/packing/<file>.json``.

The tokenizer (``byte``, ``bpe`` or a tokenizer.json) is written to ``<out>/tokenizer.json``
before any file is converted and reused by reruns, so a resumed conversion tokenises exactly
as the first run did; ``--force`` retrains (or replaces) it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from itertools import islice
from typing import Any

import numpy as np

from recipes.common.convert import WriteOptions, convert_split, shared_workers
from recipes.common.sidecar import get_bytes, put_bytes
from recipes.common.tokenizer import (
    TOKENIZER_BASENAME,
    ByteTokenizer,
    HFTokenizer,
    Tokenizer,
    load,
    load_file,
    token_dtype,
    train_bpe,
)
from streaming_lightning.errors import ConfigError
from streaming_lightning.storage.registry import is_remote
from streaming_lightning.storage.uploader import join_url

MODES = ("text", "tokens")
#: Folder of a tokens split holding each input file's packing counts.
PACKING_DIR = "packing"
DEFAULT_SEQ_LEN = 2048
DEFAULT_VOCAB_SIZE = 8000
#: Documents of the train split a BPE tokenizer is trained on (~200 MB of web text).
DEFAULT_TRAIN_DOCUMENTS = 100_000
#: Documents tokenised per call (HuggingFace tokenizers encode a batch on several threads).
ENCODE_BATCH = 256

Document = dict[str, Any]
#: The documents of one input file, in order (a module-level function: it runs in workers).
Reader = Callable[[str], Iterator[Document]]


class Packer:
    """Concatenates token arrays and cuts them into rows of exactly ``seq_len`` tokens.

    Pure and incremental (memory: one sequence plus the document being added), so the packing
    of a file can be tested without writing anything. What is left after the last ``add`` is
    ``remainder`` tokens, which the converter drops.
    """

    def __init__(self, seq_len: int, dtype: str) -> None:
        self.seq_len = seq_len
        self.dtype = np.dtype(dtype)
        self._pending: list[np.ndarray] = []
        self.remainder = 0

    def add(self, *arrays: np.ndarray) -> list[np.ndarray]:
        """Append ``arrays``; returns the sequences they complete (possibly none)."""
        self._pending.extend(arrays)
        self.remainder += sum(len(array) for array in arrays)
        if self.remainder < self.seq_len:
            return []
        flat = np.concatenate(self._pending).astype(self.dtype, copy=False)
        full = len(flat) - len(flat) % self.seq_len
        rest = flat[full:]
        self._pending = [rest] if len(rest) else []
        self.remainder = len(rest)
        return list(flat[:full].reshape(-1, self.seq_len))


def batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def tokenized(tok: Tokenizer, documents: Iterable[Document]) -> Iterator[tuple[Document, Any]]:
    """(document, its token ids) in order, encoded ``ENCODE_BATCH`` documents at a time."""
    for batch in batches(documents, ENCODE_BATCH):
        yield from zip(batch, tok.encode_batch([document["text"] for document in batch]))


@dataclass(frozen=True)
class TokensFile:
    """One input file of a tokens conversion, and where its packing counts are written."""

    path: str
    counts: str


def encode_tokens(
    task: TokensFile, read: Reader, tokenizer: str, seq_len: int
) -> Iterator[dict[str, Any]]:
    """The packed sequences of one file; ``tokenizer`` is ``byte`` or a local tokenizer.json
    (this runs in worker processes, which load it once)."""
    tok = load(tokenizer)
    packer = Packer(seq_len, token_dtype(tok.vocab_size))
    eos = np.array([tok.eos_id], np.int64)
    documents = tokens = sequences = 0
    for _, ids in tokenized(tok, read(task.path)):
        documents += 1
        tokens += len(ids) + 1
        for row in packer.add(ids, eos):
            sequences += 1
            yield {"tokens": row}
    counts = {
        "file": os.path.basename(task.path),
        "documents": documents,
        "tokens": tokens,
        "sequences": sequences,
        "dropped_tokens": packer.remainder,
    }
    put_bytes(task.counts, json.dumps(counts).encode())


def dropped_tokens(count_files: Iterable[str]) -> int | str:
    """Tokens the packing dropped, summed over the files' packing counts."""
    total = 0
    for location in count_files:
        data = get_bytes(location)
        if data is None:
            return "unknown (packing counts missing)"
        total += int(json.loads(data)["dropped_tokens"])
    return total


def training_texts(files: list[str], read: Reader, documents: int) -> Iterator[str]:
    """The text of the first ``documents`` documents of ``files`` (train split order)."""
    for document in islice((d for path in files for d in read(path)), documents):
        yield document["text"]


def train_tokenizer_on(
    files: list[str], read: Reader, vocab_size: int | None, documents: int, what: str
) -> HFTokenizer:
    """The recipe's byte-level BPE, trained on the first ``documents`` documents of ``files``;
    ``what`` names the train files for the error when there are none."""
    if not files:
        raise ConfigError(
            f"--tokenizer bpe is trained on the train split, but there are no {what}; add "
            "some, or pass a tokenizer.json."
        )
    if documents < 1:
        raise ConfigError(f"--train-documents must be >= 1, got {documents}.")
    return train_bpe(training_texts(files, read, documents), vocab_size or DEFAULT_VOCAB_SIZE)


def prepare_tokenizer(
    spec: str,
    train: Callable[[], HFTokenizer],
    options: WriteOptions,
    scratch: str,
    vocab_size: int | None = None,
) -> tuple[str, Tokenizer]:
    """(what workers load: ``byte`` or a local tokenizer.json, the tokenizer).

    For ``bpe`` (trained by ``train()``) and paths, ``<out>/tokenizer.json`` is written before
    any data — the file training and evaluation tokenise with — and reused by reruns unless
    ``--force``.
    """
    if spec == "byte":
        if vocab_size is not None:
            raise ConfigError("--vocab-size is for --tokenizer bpe (byte's vocabulary is 257).")
        return "byte", ByteTokenizer()
    if spec != "bpe" and vocab_size is not None:
        raise ConfigError(f"--vocab-size is for --tokenizer bpe; {spec} has its own vocabulary.")
    target = join_url(options.out, TOKENIZER_BASENAME)
    local = os.path.join(scratch, TOKENIZER_BASENAME) if is_remote(target) else target
    existing = None if options.force else get_bytes(target)
    if spec == "bpe" and existing is not None:
        print(f"{target}: reusing this tokenizer (pass --force to retrain it)", file=sys.stderr)
    elif spec == "bpe":
        content = train().to_str().encode()
        put_bytes(target, content)
        existing = content
    else:
        load_file(spec)  # refuse a broken file before anything is written
        with open(spec, "rb") as file:
            content = file.read()
        if existing is not None and existing != content:
            raise ConfigError(
                f"{target} holds another tokenizer than {spec}, and the converted data uses it: "
                "pass --force to replace both, or choose another --out."
            )
        if existing is None:
            put_bytes(target, content)
        existing = content
    if is_remote(target):
        with open(local, "wb") as file:
            file.write(existing)
    return local, load(local)


def add_text_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of every language recipe's ``convert``: mode, tokenizer and packing."""
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="text",
        help="text: documents as they are; tokens: packed sequences of --seq-len tokens",
    )
    parser.add_argument(
        "--tokenizer",
        default="byte",
        help="byte (default), bpe (trained on the train split, saved as <out>/tokenizer.json) "
        "or the path of a tokenizer.json",
    )
    parser.add_argument(
        "--seq-len", type=int, default=DEFAULT_SEQ_LEN, help="tokens per sequence (tokens mode)"
    )
    parser.add_argument(
        "--vocab-size",
        type=int,
        default=None,
        help=f"bpe vocabulary (default {DEFAULT_VOCAB_SIZE})",
    )
    parser.add_argument(
        "--train-documents",
        type=int,
        default=DEFAULT_TRAIN_DOCUMENTS,
        help="first train documents bpe is trained on",
    )


@dataclass(frozen=True)
class TextOptions:
    """How a language recipe stores its documents — the ``--mode``, ``--tokenizer``,
    ``--seq-len``, ``--vocab-size`` and ``--train-documents`` flags every one of them takes,
    checked once here rather than in each recipe's ``convert``."""

    #: ``text``: one sample per document; ``tokens``: packed sequences of ``seq_len`` tokens.
    mode: str = "text"
    #: ``byte``, ``bpe`` (trained on the train split) or the path of a tokenizer.json.
    tokenizer: str = "byte"
    seq_len: int = DEFAULT_SEQ_LEN
    #: BPE vocabulary (``bpe`` only; default :data:`DEFAULT_VOCAB_SIZE`).
    vocab_size: int | None = None
    #: First train documents the BPE is trained on.
    train_documents: int = DEFAULT_TRAIN_DOCUMENTS

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"--mode must be one of {MODES}, got {self.mode!r}.")
        if self.seq_len < 2:
            raise ConfigError(
                "--seq-len must be >= 2 (each token is predicted from the earlier ones), got "
                f"{self.seq_len}."
            )

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> TextOptions:
        """The options :func:`add_text_arguments`' flags give."""
        return cls(
            mode=args.mode,
            tokenizer=args.tokenizer,
            seq_len=args.seq_len,
            vocab_size=args.vocab_size,
            train_documents=args.train_documents,
        )

    @property
    def reports_tokenizer(self) -> bool:
        """Whether the conversion's result names a tokenizer (tokens mode, or a BPE/file the
        conversion wrote beside the data)."""
        return self.mode == "tokens" or self.tokenizer != "byte"

    def prepare_tokenizer(
        self, options: WriteOptions, scratch: str, train_files: list[str], read: Reader, what: str
    ) -> tuple[str, Tokenizer]:
        """:func:`prepare_tokenizer` for these options: a BPE trains on ``train_files``, read by
        ``read`` (``what`` names them in errors)."""
        return prepare_tokenizer(
            self.tokenizer,
            lambda: train_tokenizer_on(
                train_files, read, self.vocab_size, self.train_documents, what
            ),
            options,
            scratch,
            self.vocab_size,
        )

    def token_columns(self, tok: Tokenizer) -> dict[str, str]:
        """The one column of tokens mode: ``seq_len`` ids in the smallest dtype that holds
        ``tok``'s vocabulary."""
        return {"tokens": f"ndarray:{token_dtype(tok.vocab_size)}:{self.seq_len}"}


def tokenizer_report(spec: str, options: WriteOptions, tok: Tokenizer) -> dict[str, Any]:
    """What a conversion reports about its tokenizer: the model's ``vocab_size``."""
    where = spec if spec == "byte" else join_url(options.out, TOKENIZER_BASENAME)
    return {"tokenizer": where, "vocab_size": tok.vocab_size}


def convert_corpus(
    files: dict[str, list[str]],
    read: Reader,
    text_columns: dict[str, str],
    options: WriteOptions,
    text: TextOptions,
    *,
    train_split: str,
    what: str,
) -> dict[str, Any]:
    """Convert each split's files (in order, one part per file) into ``<out>/<split>``;
    returns {split: merged index}, plus the tokenizer and its vocabulary size (the model's
    ``vocab_size``), and in tokens mode ``<split>_tokens_dropped``. ``read`` yields one file's
    documents (dicts holding ``text_columns``); ``train_split`` is where BPE trains, and
    ``what`` names its files in errors."""
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as scratch, shared_workers(options.workers):
        train_files = files.get(train_split, [])
        local, tok = text.prepare_tokenizer(options, scratch, train_files, read, what)
        columns = text.token_columns(tok)
        encode = partial(encode_tokens, read=read, tokenizer=local, seq_len=text.seq_len)
        for split, paths in files.items():
            if not paths:
                continue
            if text.mode == "text":
                result[split] = convert_split(paths, read, text_columns, options, split)
                continue
            packing = join_url(join_url(options.out, split), PACKING_DIR)
            tasks = [TokensFile(p, join_url(packing, os.path.basename(p) + ".json")) for p in paths]
            result[split] = convert_split(tasks, encode, columns, options, split)
            result[f"{split}_tokens_dropped"] = dropped_tokens(task.counts for task in tasks)
    if text.reports_tokenizer:
        result |= tokenizer_report(text.tokenizer, options, tok)
    return result
