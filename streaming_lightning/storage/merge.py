"""merge_index for local and remote roots (``s3://bucket/out``, or a ``(local, remote)`` pair).

Remote parts are found by listing the root, their index files downloaded to a temp dir, merged
with the format layer's function, and the result uploaded as ``out/index.json``.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from streaming_lightning.errors import ConfigError
from streaming_lightning.format.index import INDEX_BASENAME
from streaming_lightning.format.merge import (
    IndexFiles,
    merge_local,
    merge_parts,
    parse_merge_args,
    relative_prefix,
)
from streaming_lightning.fsutil import atomic_write
from streaming_lightning.storage.registry import is_remote
from streaming_lightning.storage.transfer import download_file, list_objects, upload_file
from streaming_lightning.storage.uploader import join_url


def merge_index(*args: Any, **kwargs: Any) -> str:
    """Merge sub-dataset indexes under a root; returns the merged index's path or URL.

    ``merge_index(out)`` merges every ``index.json`` below ``out`` (not ``out``'s own);
    ``merge_index(index_files, out)`` merges the given ones, which must lie under ``out``.
    """
    index_files, out = parse_merge_args(args, kwargs)
    local: str | None
    remote: str | None
    local, remote = (out[0], out[1]) if isinstance(out, (tuple, list)) else (out, None)
    if remote is None and is_remote(local):
        local, remote = None, local
    if remote is None:
        if not local:
            raise ConfigError("merge_index: out must name a directory or a remote URL.")
        return merge_local(index_files, local)
    return _merge_remote(index_files, remote, local)


def _remote_index_files(index_files: IndexFiles | None, remote: str) -> list[str]:
    if index_files is None:
        root_index = join_url(remote, INDEX_BASENAME)
        found = [
            url
            for url in list_objects(remote.rstrip("/") + "/")
            if url.endswith("/" + INDEX_BASENAME)
        ]
        found = [url for url in found if url != root_index]
        if not found:
            raise ConfigError(f"merge_index: no sub-dataset index.json found under {remote}.")
        return sorted(found)
    urls = []
    for item in index_files:
        url = item[1] if isinstance(item, (tuple, list)) else item
        url = url.rstrip("/")
        urls.append(url if url.endswith("/" + INDEX_BASENAME) else f"{url}/{INDEX_BASENAME}")
    return list(dict.fromkeys(urls))


def _merge_remote(index_files: IndexFiles | None, remote: str, local: str | None) -> str:
    urls = _remote_index_files(index_files, remote)
    with tempfile.TemporaryDirectory(prefix="merge-index-") as tmp:
        parts = []
        for n, url in enumerate(urls):
            prefix = relative_prefix(url.rsplit("/", 1)[0], remote.rstrip("/"), sep="/")
            path = os.path.join(tmp, str(n), INDEX_BASENAME)
            os.makedirs(os.path.dirname(path))
            download_file(url, path)
            parts.append((prefix, path))
        merged = os.path.join(tmp, INDEX_BASENAME)
        data = merge_parts(parts)
        atomic_write(merged, data, fsync=True)
        target = join_url(remote, INDEX_BASENAME)
        upload_file(merged, target)
        if local:
            os.makedirs(local, exist_ok=True)
            atomic_write(os.path.join(local, INDEX_BASENAME), data, fsync=True)
    return target
