"""The Pile → MDS, one sub-dataset per subset, as documents or as packed token sequences.

Input: the release's layout — ``train/00.jsonl.zst`` … ``train/29.jsonl.zst``, ``val.jsonl.zst``
and ``test.jsonl.zst`` — zstd-compressed JSON lines ``{"text": ..., "meta": {"pile_set_name":
...}}``. Decompressed ``.jsonl`` files (what mosaicml-streaming's converter reads) work too;
a file present both ways is refused, so nothing is converted twice. Files are streamed, never
decompressed to disk.

Output, for each split: ``<out>/<split>/<subset>/`` per Pile subset (folder names from
:func:`recipes.pile.subsets.slug`: ``pile-cc``, ``arxiv``, ``gutenberg-pg-19`` …), each a
dataset of its own, so training mixes subsets with ``proportion``; ``<out>/<split>/index.json``
over all of them, to stream the whole split as one dataset; and ``<out>/<split>/subsets.json``,
each folder's subset name and sample count.

``--mode text`` stores ``text`` and ``pile_set_name`` (str) — the columns mosaicml-streaming's
converter writes. ``--mode tokens`` packs each subset's tokenised documents, per input file,
into ``--seq-len`` sequences: a sequence never mixes subsets, so proportions stay exact. Modes,
tokenizers and resuming work as for C4 (:mod:`recipes.common.text_convert`); the input files
convert in parallel with ``--workers``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Generator, Iterator
from functools import partial
from typing import Any, BinaryIO

import numpy as np
import zstandard

from recipes.common.convert import WriteOptions, convert_grouped_split, shared_workers
from recipes.common.sidecar import put_bytes
from recipes.common.text_convert import (
    Packer,
    TextOptions,
    tokenized,
    tokenizer_report,
)
from recipes.common.tokenizer import load, token_dtype
from recipes.pile.subsets import slug
from streaming_lightning.errors import ConfigError
from streaming_lightning.storage.uploader import join_url

SPLITS = ("train", "val", "test")
TEXT_COLUMNS = {"text": "str", "pile_set_name": "str"}
#: Per split: each subset folder's name and sample count.
SUBSETS_BASENAME = "subsets.json"
_SUFFIXES = (".jsonl.zst", ".jsonl")

Record = dict[str, str]


def _stem(name: str) -> str | None:
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return None


def _pick(folder: str, names: list[str]) -> list[str]:
    """The Pile files among ``names`` (in ``folder``), refusing one present both ways."""
    chosen: dict[str, str] = {}
    for name in sorted(names):
        stem = _stem(name)
        if stem is None:
            continue
        if stem in chosen:
            raise ConfigError(
                f"{folder} holds both {chosen[stem]} and {name}: the same file compressed and "
                "not. Keep one, or it would be converted twice."
            )
        chosen[stem] = name
    return [os.path.join(folder, chosen[stem]) for stem in sorted(chosen)]


def find_files(raw: str) -> dict[str, list[str]]:
    """Each split's files: ``train/*.jsonl.zst`` in name order, ``val`` and ``test``."""
    if not os.path.isdir(raw):
        raise ConfigError(f"--in {raw}: no such folder (give the Pile's folder holding train/).")
    train_dir = os.path.join(raw, "train")
    found = {"train": _pick(train_dir, os.listdir(train_dir)) if os.path.isdir(train_dir) else []}
    top = [n for n in os.listdir(raw) if os.path.isfile(os.path.join(raw, n))]
    for split in ("val", "test"):
        found[split] = _pick(raw, [n for n in top if _stem(n) == split])
    if not any(found.values()):
        raise ConfigError(
            f"No Pile files in {raw}: expected train/00.jsonl.zst ... train/29.jsonl.zst, "
            "val.jsonl.zst and test.jsonl.zst (or the same decompressed, .jsonl)."
        )
    return found


def _zstd_chunks(file: BinaryIO, path: str) -> Iterator[bytes]:
    """The decompressed bytes of a zstd file, frame after frame. Unlike a stream reader, a
    file cut short is an error: a truncated download must not pass for a shorter file."""
    decompressor = zstandard.ZstdDecompressor()
    frame = decompressor.decompressobj()
    fed = False
    while chunk := file.read(1 << 20):
        while chunk:
            fed = True
            yield frame.decompress(chunk)
            if not frame.eof:
                break
            chunk = frame.unused_data  # the next frame starts here
            frame, fed = decompressor.decompressobj(), False
    if fed and not frame.eof:
        raise zstandard.ZstdError(f"the file ends inside a zstd frame: {path} is truncated")


def _lines(path: str) -> Iterator[bytes]:
    with open(path, "rb") as file:
        if not path.endswith(".zst"):
            yield from file
            return
        tail = b""
        for chunk in _zstd_chunks(file, path):
            lines = (tail + chunk).split(b"\n") if chunk else [tail]
            tail = lines.pop()
            yield from lines
        if tail:
            yield tail


def _record(data: bytes, path: str, number: int) -> Record:
    try:
        value = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(
            f"{path}, line {number}: not a JSON object ({err}); Pile lines are "
            '{"text": ..., "meta": {"pile_set_name": ...}} — download the file again.'
        ) from None
    meta = value.get("meta") if isinstance(value, dict) else None
    name = meta.get("pile_set_name") if isinstance(meta, dict) else None
    if not isinstance(value, dict) or not isinstance(value.get("text"), str):
        raise ConfigError(f"{path}, line {number}: no 'text' string in this Pile line.")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}, line {number}: no 'meta.pile_set_name' string in this line.")
    return {"text": value["text"], "pile_set_name": name}


def read_records(path: str) -> Iterator[Record]:
    """One file's documents, in order (blank lines skipped). A corrupt file — bad zstd, cut
    short, a line that is not a Pile record — raises a ConfigError naming it and the line."""
    number = 0
    try:
        for data in _lines(path):
            number += 1
            if data.strip():
                yield _record(data, path, number)
    except (OSError, zstandard.ZstdError) as err:
        raise ConfigError(
            f"{path}, line {number + 1}: cannot read the file ({err}); download it again."
        ) from None


def _named(record: Record, names: dict[str, str], path: str) -> str:
    """The record's subset folder, refusing two subset names that share one."""
    name = record["pile_set_name"]
    group = slug(name)
    if names.setdefault(group, name) != name:
        raise ConfigError(
            f"{path}: subsets {names[group]!r} and {name!r} would share the folder {group!r}."
        )
    return group


def encode_text(path: str) -> Generator[tuple[str, Record], None, dict[str, Any]]:
    """One file's documents, each routed to its subset's folder (``--mode text``)."""
    names: dict[str, str] = {}
    for record in read_records(path):
        yield _named(record, names, path), record
    return {"names": names}


def encode_tokens(
    path: str, tokenizer: str, seq_len: int
) -> Generator[tuple[str, dict[str, Any]], None, dict[str, Any]]:
    """One file's documents tokenised, EOS appended, packed per subset (``--mode tokens``)."""
    tok = load(tokenizer)
    dtype = token_dtype(tok.vocab_size)
    eos = np.array([tok.eos_id], np.int64)
    names: dict[str, str] = {}
    packers: dict[str, Packer] = {}
    for record, ids in tokenized(tok, read_records(path)):
        group = _named(record, names, path)
        packer = packers.setdefault(group, Packer(seq_len, dtype))
        for row in packer.add(ids, eos):
            yield group, {"tokens": row}
    return {"names": names, "dropped_tokens": sum(p.remainder for p in packers.values())}


def _subset_names(stats: list[dict[str, Any]], root: str) -> dict[str, str]:
    names: dict[str, str] = {}
    for part in stats:
        for group, name in part["names"].items():
            if names.setdefault(group, name) != name:
                raise ConfigError(
                    f"{root}: subsets {names[group]!r} and {name!r} would share the folder "
                    f"{group!r}."
                )
    return names


def convert(raw: str, options: WriteOptions, text: TextOptions | None = None) -> dict[str, Any]:
    """Convert every split found in ``raw``; returns {split: merged index}, each split's
    {subset: samples} as ``<split>_subsets``, and in tokens mode (or with a BPE) the tokenizer,
    its vocabulary size and ``<split>_tokens_dropped``."""
    text = text or TextOptions()
    files = find_files(raw)
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as scratch, shared_workers(options.workers):
        local, tok = text.prepare_tokenizer(
            options, scratch, files["train"], read_records, f"train files in {raw}"
        )
        if text.mode == "text":
            encode: Any = encode_text
            columns = TEXT_COLUMNS
        else:
            encode = partial(encode_tokens, tokenizer=local, seq_len=text.seq_len)
            columns = text.token_columns(tok)
        for split, paths in files.items():
            if not paths:
                continue
            done = convert_grouped_split(paths, encode, columns, options, split)
            root = join_url(options.out, split)
            names = _subset_names(done["stats"], root)
            listing = {
                group: {"name": names[group], "samples": count}
                for group, count in done["groups"].items()
            }
            put_bytes(join_url(root, SUBSETS_BASENAME), json.dumps(listing, indent=1).encode())
            result[split] = done["index"]
            result[f"{split}_subsets"] = {names[g]: n for g, n in done["groups"].items()}
            if text.mode == "tokens":
                result[f"{split}_tokens_dropped"] = sum(
                    int(part.get("dropped_tokens", 0)) for part in done["stats"]
                )
    if text.reports_tokenizer:
        result |= tokenizer_report(text.tokenizer, options, tok)
    return result
