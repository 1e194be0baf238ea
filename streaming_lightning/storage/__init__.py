"""Moving files: local paths, S3, GCS, OCI and Azure behind one small interface.

Importing this package registers the uploader that writers use for remote ``out``; cloud SDKs
are imported only when a URL of their scheme is used.
"""

from streaming_lightning.storage.registry import get_backend, is_remote, supported_schemes
from streaming_lightning.storage.transfer import (
    download_file,
    list_objects,
    object_exists,
    read_range,
    upload_file,
)
from streaming_lightning.storage.uploader import RemoteUploader, join_url

__all__ = [
    "RemoteUploader",
    "download_file",
    "get_backend",
    "is_remote",
    "join_url",
    "list_objects",
    "object_exists",
    "read_range",
    "supported_schemes",
    "upload_file",
]
