"""merge_index: combine the index.json files of several writers into one dataset.

Parallel conversion writes one sub-dataset per process (``out/0/``, ``out/1/`` ...). Merging
lists every shard of each part in one root ``index.json``, naming the files relative to the
root (``0/shard.00000.mds``), so the parts are read as one dataset without moving any file.
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


def _is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def _local(path: str) -> str:
    return path[len("file://") :] if path.startswith("file://") else path


def merge_index(*args: Any, **kwargs: Any) -> str:
    """Merge sub-dataset indexes; returns the merged index path.

    Two call forms, as in mosaicml-streaming:

    - ``merge_index(index_files, out)``: ``index_files`` lists the parts' index.json paths (or
      their directories); each must lie under ``out``.
    - ``merge_index(out)``: merge every ``index.json`` found below ``out`` (not ``out``'s own).

    ``keep_local`` and ``download_timeout`` are accepted for signature compatibility.
    """
    kwargs.pop("keep_local", None)
    kwargs.pop("download_timeout", None)
    if (
        args
        and isinstance(args[0], (list, tuple))
        and not (
            len(args[0]) == 2
            and isinstance(args[0], tuple)
            and all(isinstance(a, str) for a in args[0])
            and len(args) == 1
        )
    ):
        out = args[1] if len(args) > 1 else kwargs.pop("out", None)
        return _merge_list(list(args[0]), out)
    if args:
        return _merge_root(args[0])
    if "index_file_urls" in kwargs:
        return _merge_list(kwargs["index_file_urls"], kwargs.get("out"))
    if "out" in kwargs:
        return _merge_root(kwargs["out"])
    raise ConfigError("merge_index needs (index_files, out) or (out).")


def _local_out(out: Any) -> str:
    if isinstance(out, (tuple, list)):
        out = out[0]
    if not isinstance(out, str) or not out:
        raise ConfigError(f"merge_index: out must be a directory, got {out!r}.")
    if _is_remote(out):
        raise ConfigError(
            f"merge_index: remote output {out} needs the storage layer, not available in this version."
        )
    return os.path.abspath(_local(out))


def _merge_root(out: Any) -> str:
    root = _local_out(out)
    found = []
    for dirpath, _dirs, files in os.walk(root):
        if INDEX_BASENAME in files and os.path.abspath(dirpath) != root:
            found.append(os.path.join(dirpath, INDEX_BASENAME))
    if not found:
        raise IndexFormatError(f"merge_index: no sub-dataset index.json found under {root}.")
    return _merge_list(sorted(found), root)


def _merge_list(index_files: Sequence[Any], out: Any) -> str:
    root = _local_out(out)
    if not index_files:
        raise ConfigError("merge_index: the list of index files is empty.")
    shards: list[dict[str, Any]] = []
    seen = set()
    for item in index_files:
        path = item[0] if isinstance(item, (tuple, list)) else item
        if not isinstance(path, str) or _is_remote(path):
            raise ConfigError(
                f"merge_index: {path!r} is not a local path (remote needs the storage layer)."
            )
        path = os.path.abspath(_local(path).rstrip("/"))
        if os.path.isdir(path):
            path = os.path.join(path, INDEX_BASENAME)
        if path in seen:
            continue
        seen.add(path)
        part_dir = os.path.dirname(path)
        relative = os.path.relpath(part_dir, root)
        if relative == "." or relative.startswith(".."):
            raise ConfigError(f"merge_index: {path} must be inside a subdirectory of {root}.")
        prefix = relative.replace(os.sep, "/")
        for shard in load_index(path):
            for key in _FILE_KEYS:
                if shard.get(key):
                    shard[key]["basename"] = f"{prefix}/{shard[key]['basename']}"
            shards.append(shard)
    merged = os.path.join(root, INDEX_BASENAME)
    # Same bytes as mosaicml-streaming's merge (version first, keys of each shard as loaded).
    atomic_write(
        merged, json.dumps({"version": INDEX_VERSION, "shards": shards}).encode("utf-8"), fsync=True
    )
    return merged
