"""Helpers every command shares: byte formatting, reading an index from anywhere, and the
error types that mean "the user asked for something wrong" (exit 2, one line, no traceback)."""

from __future__ import annotations

import argparse
import os
import tempfile
from typing import Any, TypeAlias

from streaming_lightning.errors import StreamingError
from streaming_lightning.format.index import INDEX_BASENAME, load_index
from streaming_lightning.storage.registry import is_remote
from streaming_lightning.storage.transfer import download_file
from streaming_lightning.storage.uploader import join_url

#: What ``main`` turns into ``error: ...`` and exit code 2. A missing path is a user mistake
#: as much as a bad URL, so the OS errors for it count too.
USER_ERRORS: tuple[type[BaseException], ...] = (
    StreamingError,
    FileNotFoundError,
    NotADirectoryError,
)

#: ``commands.add_parser`` of the top-level parser, handed to each command's ``register``.
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def human(n: float) -> str:
    """Bytes in binary units, as ``du -h`` would say them."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def dataset_root(location: str, split: str | None) -> str:
    """The directory or URL holding ``index.json`` (``location/split`` with a split)."""
    return join_url(location, split) if split else location


def load_any_index(location: str, split: str | None) -> tuple[str, list[dict[str, Any]]]:
    """(index URL or path, validated shard entries) of a local or remote dataset; only the
    index is fetched for a remote one."""
    index_url = join_url(dataset_root(location, split), INDEX_BASENAME)
    if not is_remote(location):
        return index_url, load_index(index_url)
    with tempfile.TemporaryDirectory(prefix="sl-index-") as tmp:
        path = download_file(index_url, os.path.join(tmp, INDEX_BASENAME))
        return index_url, load_index(path)


def positive_int(text: str) -> int:
    """argparse type for counts that must be at least 1 (a typo gets argparse's message)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value
