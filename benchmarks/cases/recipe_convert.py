"""Converting text corpora with the recipes: our EnWiki and Pile converters vs
mosaicml-streaming's own (``streaming.text.convert.enwiki_text`` and ``.pile``), on the same
raw files, shards compressed with zstd level 7 (mosaicml-streaming's EnWiki default; its Pile
merge step fails on uncompressed shards), documents per second end to end.

Both produce the same samples (tests/compat/recipes/test_catalogue_interop.py checks it).
Parallelism is matched: mosaicml-streaming's EnWiki converter is one process, its Pile
converter a ``Pool()`` over the input files (2 processes here), so ours runs with
``--workers 1`` and ``--workers 2`` respectively. The EnWiki set with ``--workers 2`` shows
what parallel parts add (the peer has no such option). Ours also writes one dataset per
Pile subset and the split's merged index; theirs writes one dataset per input file and
merges them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks.harness import OURS, CaseSpec, Metric

PEER = "mosaicml-streaming"
COMPRESSION = "zstd:7"

SPEC = CaseSpec(
    name="recipe_convert",
    libraries=[OURS, PEER],
    params=[
        {"recipe": "enwiki", "files": 4, "docs": 50_000, "workers": 1},
        {"recipe": "enwiki", "files": 4, "docs": 50_000, "workers": 2},
        {"recipe": "pile", "files": 4, "docs": 25_000, "workers": 2},
    ],
    quick_params=[
        {"recipe": "enwiki", "files": 2, "docs": 500, "workers": 1},
        {"recipe": "pile", "files": 2, "docs": 500, "workers": 2},
    ],
    metrics=[Metric("docs_per_s", "documents/s"), Metric("mb_per_s", "MB of raw text/s")],
    timeout=900,
)


def _size(root: str) -> int:
    return sum(
        os.path.getsize(os.path.join(folder, name))
        for folder, _, names in os.walk(root)
        for name in names
    )


@contextmanager
def environment(params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    root = tempfile.mkdtemp(prefix="bench-recipe-convert-")
    try:
        raw = os.path.join(root, "raw")
        if params["recipe"] == "enwiki":
            from recipes.enwiki.fixtures import write_raw

            write_raw(raw, parts=params["files"], articles_per_part=params["docs"])
            docs = (params["files"] + 1) * params["docs"]
        else:
            from recipes.pile.fixtures import write_raw as write_pile

            # Decompressed .jsonl: what mosaicml-streaming's converter reads.
            write_pile(raw, params["files"], params["docs"], compress=False)
            docs = params["files"] * params["docs"] + 2 * (params["docs"] // 2)
        yield {"raw": raw, "total_docs": docs, "raw_bytes": _size(raw)}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _ours(params: dict[str, Any], out: str) -> None:
    from recipes.common.convert import WriteOptions

    options = WriteOptions(
        out=out, progress=False, workers=params["workers"], compression=COMPRESSION
    )
    if params["recipe"] == "enwiki":
        from recipes.enwiki.convert import convert
    else:
        from recipes.pile.convert import convert  # type: ignore[assignment]
    convert(params["raw"], options)


def _theirs(params: dict[str, Any], out: str) -> bool:
    raw = params["raw"]
    if params["recipe"] == "enwiki":
        if params["workers"] != 1:
            return False  # one process only
        from streaming.text.convert.enwiki_text import process_split

        from recipes.enwiki.convert import find_files

        for split, paths in find_files(raw).items():
            names = [os.path.basename(p) for p in paths]
            process_split(raw, out, COMPRESSION, [], 1 << 25, 0, 0, names, split)
        return True
    from argparse import Namespace

    from streaming.text.convert import pile

    pile.main(
        Namespace(in_root=raw, out_root=out, compression=COMPRESSION, hashes="", size_limit=1 << 27)
    )
    return True


def run(library: str, params: dict[str, Any]) -> dict[str, float] | None:
    out = tempfile.mkdtemp(prefix="bench-recipe-convert-out-")
    try:
        began = time.perf_counter()
        if library == OURS:
            _ours(params, os.path.join(out, "mds"))
        elif library == PEER:
            if not _theirs(params, os.path.join(out, "mds")):
                return None
        else:
            raise ValueError(f"unknown library {library!r}")
        elapsed = time.perf_counter() - began
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {
        "docs_per_s": params["total_docs"] / elapsed,
        "mb_per_s": params["raw_bytes"] / elapsed / 1e6,
    }
