"""A small dataset in the Pile's exact raw layout (``train/NN.jsonl.zst``, ``val.jsonl.zst``,
``test.jsonl.zst``: zstd JSON lines ``{"text", "meta": {"pile_set_name"}}``), for tests and
demos — no download.

Like the release, every file interleaves documents of several subsets in random order, some
subsets are much larger than others, and texts hold newlines and multi-byte UTF-8.
"""

from __future__ import annotations

import json
import os

import numpy as np
import zstandard

from recipes.c4.fixtures import document

#: Subsets the fixture draws from, with their relative frequency (a skewed mix, like the
#: Pile's, including names with spaces and brackets).
FIXTURE_SUBSETS = {
    "Pile-CC": 5.0,
    "ArXiv": 2.0,
    "Github": 2.0,
    "Gutenberg (PG-19)": 1.0,
    "Wikipedia (en)": 1.0,
}


def records(rng: np.random.Generator, count: int) -> list[dict[str, object]]:
    names = list(FIXTURE_SUBSETS)
    weights = np.array(list(FIXTURE_SUBSETS.values()))
    picks = rng.choice(len(names), count, p=weights / weights.sum())
    return [{"text": document(rng), "meta": {"pile_set_name": names[i]}} for i in picks]


def write_file(path: str, lines: list[dict[str, object]], compress: bool = True) -> None:
    data = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()
    with open(path, "wb") as file:
        file.write(zstandard.ZstdCompressor(level=3).compress(data) if compress else data)


def write_raw(
    root: str, train_files: int = 3, docs_per_file: int = 60, seed: int = 0, compress: bool = True
) -> str:
    """Write ``root/train/00.jsonl.zst`` … and ``root/{val,test}.jsonl.zst``; returns ``root``
    (``compress=False``: the decompressed ``.jsonl`` files mosaicml-streaming converts)."""
    rng = np.random.default_rng(seed)
    suffix = ".jsonl.zst" if compress else ".jsonl"
    os.makedirs(os.path.join(root, "train"), exist_ok=True)
    for index in range(train_files):
        path = os.path.join(root, "train", f"{index:02d}{suffix}")
        write_file(path, records(rng, docs_per_file), compress)
    for split in ("val", "test"):
        write_file(os.path.join(root, split + suffix), records(rng, docs_per_file // 2), compress)
    return root
