"""allenai/c4 (the ``en/`` release) → MDS, as documents or as packed token sequences.

Input: the ``en/`` folder of https://huggingface.co/datasets/allenai/c4, or any subset of its
files — ``c4-train.00000-of-01024.json.gz`` … and ``c4-validation.00000-of-00008.json.gz`` …,
each a gzip of one JSON object per line with ``text``, ``timestamp`` and ``url``. ``--in`` is
that folder or its parent. Each split's files are converted in name order, one part per file,
into ``<out>/train`` and ``<out>/validation``.

``--mode text`` stores one sample per document: ``text``, ``timestamp``, ``url`` (str). The
tokenizer is chosen at training time (StreamingC4 tokenises on the fly).

``--mode tokens`` stores what a language model trains on: each document tokenised, EOS
appended, the documents of a file concatenated and cut into sequences of exactly ``--seq-len``
tokens — column ``tokens``, ``ndarray:uint16:<seq_len>`` (``uint32`` for vocabularies over
65,536 ids). Packing is *per input file*: a sequence never spans two files, and each file's
tail shorter than ``--seq-len`` is **dropped** (at most seq_len - 1 tokens per file, about 0.1%
of a C4 file at 2048; the output counts them as ``<split>_tokens_dropped``). That is what makes
the conversion parallel and deterministic: a file's sequences depend on that file alone, so
files convert in any order on any number of ``--workers``, an interrupted conversion resumes
file by file, and the dataset is byte-identical whatever the worker count. Each file's counts
(documents, tokens, sequences, dropped) are kept in ``<out>/<split>/packing/<file>.json``.

``--tokenizer`` is ``byte``, ``bpe`` or a tokenizer.json path (see
:mod:`recipes.c4.tokenizer`). For ``bpe`` and paths, the tokenizer is written to
``<out>/tokenizer.json`` before any file is converted, and a rerun reuses it — a resumed
conversion tokenises exactly as the first run did; ``--force`` retrains (or replaces) it.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import sys
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from itertools import islice
from typing import Any

import numpy as np

from recipes.c4.tokenizer import (
    TOKENIZER_BASENAME,
    ByteTokenizer,
    HFTokenizer,
    Tokenizer,
    load,
    load_file,
    token_dtype,
    train_bpe,
)
from recipes.common.convert import WriteOptions, convert_split
from streaming_lightning.errors import ConfigError
from streaming_lightning.fsutil import atomic_write
from streaming_lightning.storage.registry import is_remote
from streaming_lightning.storage.transfer import download_file, object_exists, upload_file
from streaming_lightning.storage.uploader import join_url

SPLITS = ("train", "validation")
MODES = ("text", "tokens")
#: allenai/c4's file names (``.json`` too, for files someone has already gunzipped).
FILE_PATTERN = re.compile(r"^c4-(train|validation)\.(\d{5})-of-(\d{5})\.json(\.gz)?$")
TEXT_COLUMNS = {"text": "str", "timestamp": "str", "url": "str"}
#: Folder of a tokens split holding each input file's packing counts.
PACKING_DIR = "packing"
DEFAULT_SEQ_LEN = 2048
DEFAULT_VOCAB_SIZE = 8000
#: Documents of the train split a BPE tokenizer is trained on (~200 MB of C4 text).
DEFAULT_TRAIN_DOCUMENTS = 100_000
#: Documents tokenised per call (HuggingFace tokenizers encode a batch on several threads).
_ENCODE_BATCH = 256


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


def encode_text(path: str) -> Iterator[dict[str, str]]:
    """One sample per document (``--mode text``)."""
    yield from read_documents(path)


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


@dataclass(frozen=True)
class TokensFile:
    """One input file of a tokens conversion, and where its packing counts are written."""

    path: str
    counts: str


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def encode_tokens(task: TokensFile, tokenizer: str, seq_len: int) -> Iterator[dict[str, Any]]:
    """The packed sequences of one file (``--mode tokens``); ``tokenizer`` is ``byte`` or a
    local tokenizer.json (this runs in worker processes, which load it once)."""
    tok = load(tokenizer)
    packer = Packer(seq_len, token_dtype(tok.vocab_size))
    eos = np.array([tok.eos_id], np.int64)
    documents = tokens = sequences = 0
    for batch in _batches(read_documents(task.path), _ENCODE_BATCH):
        for ids in tok.encode_batch([document["text"] for document in batch]):
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
    _put_bytes(task.counts, json.dumps(counts).encode())


def _put_bytes(location: str, data: bytes) -> None:
    """Write a small file to a local path or a remote URL."""
    if not is_remote(location):
        os.makedirs(os.path.dirname(os.path.abspath(location)), exist_ok=True)
        atomic_write(location, data)
        return
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, os.path.basename(location))
        with open(path, "wb") as file:
            file.write(data)
        upload_file(path, location)


def _get_bytes(location: str) -> bytes | None:
    """A small local or remote file's content; None if it does not exist."""
    if not is_remote(location):
        try:
            with open(location, "rb") as file:
                return file.read()
        except FileNotFoundError:
            return None
    if not object_exists(location):
        return None
    with tempfile.TemporaryDirectory() as scratch:
        path = download_file(location, os.path.join(scratch, os.path.basename(location)))
        with open(path, "rb") as file:
            return file.read()


def _dropped_tokens(tasks: list[TokensFile]) -> int | str:
    total = 0
    for task in tasks:
        data = _get_bytes(task.counts)
        if data is None:
            return "unknown (packing counts missing)"
        total += int(json.loads(data)["dropped_tokens"])
    return total


def training_texts(files: list[str], documents: int) -> Iterator[str]:
    """The text of the first ``documents`` documents of ``files`` (train split order)."""
    for document in islice((d for path in files for d in read_documents(path)), documents):
        yield document["text"]


def _train(files: list[str], raw: str, vocab_size: int | None, documents: int) -> HFTokenizer:
    if not files:
        raise ConfigError(
            f"--tokenizer bpe is trained on the train split, but {raw} has no "
            "c4-train.*.json.gz files; add some, or pass a tokenizer.json."
        )
    if documents < 1:
        raise ConfigError(f"--train-documents must be >= 1, got {documents}.")
    return train_bpe(training_texts(files, documents), vocab_size or DEFAULT_VOCAB_SIZE)


def prepare_tokenizer(
    spec: str,
    raw: str,
    train_files: list[str],
    options: WriteOptions,
    scratch: str,
    vocab_size: int | None = None,
    train_documents: int = DEFAULT_TRAIN_DOCUMENTS,
) -> tuple[str, Tokenizer]:
    """(what workers load: ``byte`` or a local tokenizer.json, the tokenizer).

    For ``bpe`` and paths, ``<out>/tokenizer.json`` is written before any data — the file
    training and evaluation tokenise with — and reused by reruns unless ``--force``.
    """
    if spec == "byte":
        if vocab_size is not None:
            raise ConfigError("--vocab-size is for --tokenizer bpe (byte's vocabulary is 257).")
        return "byte", ByteTokenizer()
    if spec != "bpe" and vocab_size is not None:
        raise ConfigError(f"--vocab-size is for --tokenizer bpe; {spec} has its own vocabulary.")
    target = join_url(options.out, TOKENIZER_BASENAME)
    local = os.path.join(scratch, TOKENIZER_BASENAME) if is_remote(target) else target
    existing = None if options.force else _get_bytes(target)
    if spec == "bpe" and existing is not None:
        print(f"{target}: reusing this tokenizer (pass --force to retrain it)", file=sys.stderr)
    elif spec == "bpe":
        content = _train(train_files, raw, vocab_size, train_documents).to_str().encode()
        _put_bytes(target, content)
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
            _put_bytes(target, content)
        existing = content
    if is_remote(target):
        with open(local, "wb") as file:
            file.write(existing)
    return local, load(local)


def convert(
    raw: str,
    options: WriteOptions,
    mode: str = "text",
    tokenizer: str = "byte",
    seq_len: int = DEFAULT_SEQ_LEN,
    vocab_size: int | None = None,
    train_documents: int = DEFAULT_TRAIN_DOCUMENTS,
) -> dict[str, Any]:
    """Convert every split found under ``raw``; returns {split: merged index path/URL}, plus
    the tokenizer and its vocabulary size (the model's ``vocab_size``), and in tokens mode
    ``<split>_tokens_dropped``."""
    if mode not in MODES:
        raise ConfigError(f"--mode must be one of {MODES}, got {mode!r}.")
    if seq_len < 2:
        raise ConfigError(
            f"--seq-len must be >= 2 (each token is predicted from the earlier ones), got {seq_len}."
        )
    files = find_files(raw)
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as scratch:
        local, tok = prepare_tokenizer(
            tokenizer, raw, files["train"], options, scratch, vocab_size, train_documents
        )
        columns = {"tokens": f"ndarray:{token_dtype(tok.vocab_size)}:{seq_len}"}
        encode = partial(encode_tokens, tokenizer=local, seq_len=seq_len)
        for split, paths in files.items():
            if not paths:
                continue
            if mode == "text":
                result[split] = convert_split(paths, encode_text, TEXT_COLUMNS, options, split)
                continue
            packing = join_url(join_url(options.out, split), PACKING_DIR)
            tasks = [TokensFile(p, join_url(packing, os.path.basename(p) + ".json")) for p in paths]
            result[split] = convert_split(tasks, encode, columns, options, split)
            result[f"{split}_tokens_dropped"] = _dropped_tokens(tasks)
    if mode == "tokens" or tokenizer != "byte":
        result["tokenizer"] = (
            tokenizer if tokenizer == "byte" else join_url(options.out, TOKENIZER_BASENAME)
        )
        result["vocab_size"] = tok.vocab_size
    return result


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
    if not force and _get_bytes(out) is not None:
        raise ConfigError(f"{out} already exists; pass --force to replace it.")
    tok = _train(find_files(raw)["train"], raw, vocab_size, documents)
    _put_bytes(out, tok.to_str().encode())
    return {"tokenizer": out, "vocab_size": tok.vocab_size}
