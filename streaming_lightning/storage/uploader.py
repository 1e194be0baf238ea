"""The storage side of a writer's ``out=(local, remote)``: upload each finished file."""

from __future__ import annotations

from streaming_lightning.format.index import INDEX_BASENAME
from streaming_lightning.format.sink import register_sink_factory
from streaming_lightning.format.writer import OutputExistsError
from streaming_lightning.storage.base import ObjectURL
from streaming_lightning.storage.registry import get_backend, scheme_of
from streaming_lightning.storage.transfer import object_exists, upload_file


def join_url(remote: str, basename: str) -> str:
    """``remote`` + ``/basename`` for URLs and local paths alike."""
    if scheme_of(remote) == "file":
        import os

        return os.path.join(
            remote[len("file://") :] if remote.startswith("file://") else remote, basename
        )
    return str(ObjectURL.parse(remote).child(basename))


class RemoteUploader:
    """Uploads a writer's files under one remote prefix, with the shared retry policy."""

    def __init__(self, remote: str, retry: int, timeout: float = 300.0) -> None:
        get_backend(remote)  # fail now, with install advice, if the SDK is missing
        self.remote = remote
        self.retry = retry
        self.timeout = timeout

    def check_output(self, exist_ok: bool) -> None:
        index_url = join_url(self.remote, INDEX_BASENAME)
        if not exist_ok and object_exists(index_url, retry=self.retry):
            raise OutputExistsError(
                f"{index_url} already exists: a dataset is already there. Pass exist_ok=True to "
                "overwrite it, or choose another remote."
            )

    def upload(self, local_path: str, basename: str) -> None:
        upload_file(
            local_path, join_url(self.remote, basename), retry=self.retry, timeout=self.timeout
        )


register_sink_factory(RemoteUploader)
