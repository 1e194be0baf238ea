"""One exception hierarchy for the whole library.

Every error a user can hit derives from :class:`StreamingError`, so ``except StreamingError``
catches all of ours and nothing else. Subclasses also derive from the built-in exception that
mosaicml-streaming raises in the same situation (``ValueError``, ``FileNotFoundError`` ...), so
code written against that library keeps catching what it caught before.

Messages name the file, URL or key involved and say what to do about it.
"""

from __future__ import annotations


class StreamingError(Exception):
    """Base class of every error raised by streaming_lightning."""


class ConfigError(StreamingError, ValueError):
    """An argument or configuration value is invalid (caught before any work is done)."""


class EncodingError(StreamingError, ValueError):
    """A column encoding is unknown, or a value does not fit its column's encoding."""


class UnsafeTypeError(StreamingError, ValueError):
    """Decoding would execute code (pickle); refused unless ``allow_unsafe_types=True``."""


class CompressionError(StreamingError, ValueError):
    """Unknown compression algorithm or level, or compressed bytes that do not decompress."""


class HashError(StreamingError, ValueError):
    """Unknown hash algorithm."""


class CorruptDataError(StreamingError, ValueError):
    """Bytes read from disk or network are not what they claim to be.

    Raised for truncated shards, impossible offset tables, hash mismatches and the like. The
    message always names the offending file.
    """


class IndexFormatError(CorruptDataError):
    """An ``index.json`` is not valid JSON, lacks required fields, or is internally inconsistent."""


class HashMismatchError(CorruptDataError):
    """A file's digest differs from the one recorded in ``index.json``."""


class UnsafePathError(CorruptDataError):
    """A path taken from untrusted metadata would escape the directory it must stay inside."""


class MissingFileError(StreamingError, FileNotFoundError):
    """A file the dataset needs (index.json, a shard file) is not on local disk and there is
    no remote to fetch it from."""


class MissingExtraError(StreamingError, ImportError):
    """An optional dependency is not installed; the message says which extra to install."""


class StorageError(StreamingError, OSError):
    """A transfer to or from storage failed. The message names the URL, never credentials."""


class RemoteNotFoundError(StorageError, FileNotFoundError):
    """The remote object or bucket does not exist (not retried)."""


class RemotePermissionError(StorageError, PermissionError):
    """Access was denied or credentials are missing/invalid (not retried)."""


class TransientStorageError(StorageError):
    """A failure worth retrying: timeout, throttling, 5xx, reset or truncated transfer."""


class CacheThrashWarning(UserWarning):
    """The cache_limit is smaller than the set of shards the shuffle reads from at once: it
    works, but shards are downloaded many times per epoch."""
