"""Where finished shard files go besides local disk — the seam between writers and storage.

The format layer must not import the storage layer (layers import only downward), yet
``MDSWriter(out="s3://...")`` must upload. So the format layer defines this small protocol and
the storage layer registers the factory that builds one when it is imported (importing
``streaming_lightning`` does that).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from streaming_lightning.errors import ConfigError


class RemoteSink(Protocol):
    """Uploads files of one dataset directory to one remote prefix."""

    remote: str

    def check_output(self, exist_ok: bool) -> None:
        """Refuse to write over an existing remote dataset unless ``exist_ok``."""

    def upload(self, local_path: str, basename: str) -> None:
        """Upload a finished file; raise on failure (after retries)."""


SinkFactory = Callable[[str, int], RemoteSink]
_factory: SinkFactory | None = None


def register_sink_factory(factory: SinkFactory) -> None:
    global _factory
    _factory = factory


def open_sink(remote: str, retry: int) -> RemoteSink:
    if _factory is None:
        raise ConfigError(
            f"Writing to {remote} needs the storage layer: import streaming_lightning (or "
            "streaming_lightning.storage) before creating the writer."
        )
    return _factory(remote, retry)
