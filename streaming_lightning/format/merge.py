"""merge_index: combine the index.json files of several writers into one dataset.

Parallel conversion writes one sub-dataset per process (``out/0/``, ``out/1/`` ...). Merging
lists every shard of each part in one root ``index.json``, naming the files relative to the
root (``0/shard.00000.mds``), so the parts are read as one dataset without moving any file.

This module merges local directories; :mod:`streaming_lightning.storage.merge` adds remote
roots (``s3://bucket/out``) on top of the same functions.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from streaming_lightning.errors import ConfigError, IndexFormatError
from streaming_lightning.format.index import INDEX_BASENAME, INDEX_VERSION, load_index
from streaming_lightning.fsutil import atomic_write

_FILE_KEYS = ("raw_data", "zip_data", "raw_meta", "zip_meta")

IndexFiles = Sequence[str | tuple[str, str]]
Out = str | tuple[str, str]


def parse_merge_args(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[IndexFiles | None, Out]:
    """Accept mosaicml-streaming's two call forms: ``(index_files, out)`` and ``(out)``.

    ``keep_local`` and ``download_timeout`` are accepted for signature compatibility.
    """
    kwargs = {k: v for k, v in kwargs.items() if k not in ("keep_local", "download_timeout")}
    if args and isinstance(args[0], list):
        out = args[1] if len(args) > 1 else kwargs.get("out")
        if not out:
            raise ConfigError("merge_index(index_files, out): out is missing.")
        return args[0], out
    if args:
        return None, args[0]
    if "index_file_urls" in kwargs:
        return kwargs["index_file_urls"], kwargs.get("out") or ""
    if kwargs.get("out"):
        return None, kwargs["out"]
    raise ConfigError("merge_index needs (index_files, out) or (out).")


def merge_parts(parts: Sequence[tuple[str, str]]) -> bytes:
    """Merged index bytes from (prefix relative to the root, path of the part's index.json).

    Same bytes as mosaicml-streaming's merge: version first, each shard's keys as loaded.
    """
    if not parts:
        raise ConfigError("merge_index: the list of index files is empty.")
    shards: list[dict[str, Any]] = []
    for prefix, path in parts:
        for shard in load_index(path):
            for key in _FILE_KEYS:
                if shard.get(key):
                    shard[key]["basename"] = f"{prefix}/{shard[key]['basename']}"
            shards.append(shard)
    return json.dumps({"version": INDEX_VERSION, "shards": shards}).encode("utf-8")


def relative_prefix(part_dir: str, root: str, *, sep: str = os.sep) -> str:
    """The part's directory relative to the root, which it must be strictly inside."""
    part = part_dir.rstrip(sep)
    base = root.rstrip(sep)
    if not part.startswith(base + sep):
        raise ConfigError(f"merge_index: {part_dir} must be inside a subdirectory of {root}.")
    return part[len(base) + 1 :].replace(sep, "/")


def _strip_file(path: str) -> str:
    return path[len("file://") :] if path.startswith("file://") else path


def merge_local(index_files: IndexFiles | None, out: str) -> str:
    """Merge local sub-dataset indexes into ``out/index.json``; return its path."""
    root = os.path.abspath(_strip_file(out))
    if index_files is None:
        found = [
            os.path.join(dirpath, INDEX_BASENAME)
            for dirpath, _dirs, files in os.walk(root)
            if INDEX_BASENAME in files and os.path.abspath(dirpath) != root
        ]
        if not found:
            raise IndexFormatError(f"merge_index: no sub-dataset index.json found under {root}.")
        index_files = sorted(found)
    parts: list[tuple[str, str]] = []
    seen: set[str] = set()
    for item in index_files:
        path = item[0] if isinstance(item, (tuple, list)) else item
        path = os.path.abspath(_strip_file(path).rstrip("/"))
        if os.path.isdir(path):
            path = os.path.join(path, INDEX_BASENAME)
        if path not in seen:
            seen.add(path)
            parts.append((relative_prefix(os.path.dirname(path), root), path))
    merged = os.path.join(root, INDEX_BASENAME)
    atomic_write(merged, merge_parts(parts), fsync=True)
    return merged
