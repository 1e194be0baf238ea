"""Copy a whole dataset (index.json + every shard file) from a remote into a local directory.

Used to pre-fetch a dataset before training, by the CLI, and by tests of the storage layer.
Each shard file is fetched in its stored form (compressed if the writer compressed it), checked
against the size — and with ``validate_hash`` the digest — recorded in the index before it is
renamed into place, so nothing truncated or corrupt ever lands in the local directory.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from streaming_lightning.format.index import INDEX_BASENAME, FileInfo, load_index
from streaming_lightning.fsutil import safe_join
from streaming_lightning.storage.transfer import download_file, hash_verifier
from streaming_lightning.storage.uploader import join_url


def shard_files(shards: list[dict[str, Any]]) -> list[FileInfo]:
    """The files to fetch for each shard: the compressed form when there is one."""
    files = []
    for shard in shards:
        for role in ("data", "meta"):
            raw = shard.get(f"raw_{role}")
            if raw is None:
                continue
            stored = shard.get(f"zip_{role}") or raw
            files.append(FileInfo.from_json(stored, where=f"shard {role}"))
    return files


def download_dataset(
    remote: str,
    local: str,
    *,
    split: str | None = None,
    workers: int = 8,
    retry: int = 2,
    timeout: float = 60.0,
    validate_hash: str | None = None,
    progress_bar: bool = False,
) -> list[dict[str, Any]]:
    """Download ``remote[/split]`` into ``local[/split]``; return the index's shard entries."""
    remote_root = join_url(remote, split) if split else remote
    local_root = os.path.join(local, split) if split else local
    os.makedirs(local_root, exist_ok=True)
    index_path = os.path.join(local_root, INDEX_BASENAME)
    # The index is always fetched fresh (it is small and may have changed), atomically.
    if os.path.exists(index_path):
        os.unlink(index_path)
    download_file(join_url(remote_root, INDEX_BASENAME), index_path, retry=retry, timeout=timeout)
    shards = load_index(index_path)
    files = shard_files(shards)

    def fetch(info: FileInfo) -> None:
        url = join_url(remote_root, info.basename)
        dest = safe_join(local_root, info.basename, source=index_path)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        verify = (
            hash_verifier(info.hashes.get(validate_hash), validate_hash, url)
            if validate_hash
            else None
        )
        download_file(
            url, dest, retry=retry, timeout=timeout, expected_bytes=info.bytes, verify=verify
        )

    progress = None
    if progress_bar:
        from tqdm import tqdm

        progress = tqdm(total=len(files), desc=f"Downloading {remote_root}", unit=" files")
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for _ in pool.map(fetch, files):
            if progress is not None:
                progress.update(1)
    if progress is not None:
        progress.close()
    return shards
