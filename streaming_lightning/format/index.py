"""``index.json``: the one file that says which shards a dataset has and how to read them.

Everything in it is untrusted input: it may come from a bucket anyone can write to. Loading
validates structure and types up front and names the file and shard in every error, so a bad
index fails at open time with a clear message rather than deep inside iteration.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from streaming_lightning.errors import IndexFormatError
from streaming_lightning.format.compression import is_compression
from streaming_lightning.format.hashing import is_hash
from streaming_lightning.fsutil import atomic_write, safe_join

INDEX_BASENAME = "index.json"
INDEX_VERSION = 2


def get_index_basename() -> str:
    """The index file's name inside a dataset directory."""
    return INDEX_BASENAME


@dataclass(frozen=True)
class FileInfo:
    """One file of a shard as recorded in the index: its name, size and digests."""

    basename: str
    bytes: int
    hashes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj: Any, *, where: str) -> FileInfo:
        if not isinstance(obj, dict):
            raise IndexFormatError(
                f"{where}: expected an object with basename/bytes/hashes, got {obj!r:.80}."
            )
        basename, size, hashes = obj.get("basename"), obj.get("bytes"), obj.get("hashes", {})
        if not isinstance(basename, str) or not basename:
            raise IndexFormatError(
                f"{where}: 'basename' must be a non-empty string, got {basename!r:.200}."
            )
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise IndexFormatError(
                f"{where}: 'bytes' must be a non-negative integer, got {size!r:.80}."
            )
        if not isinstance(hashes, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in hashes.items()
        ):
            raise IndexFormatError(f"{where}: 'hashes' must map algorithm names to hex strings.")
        return cls(basename, size, dict(hashes))

    def to_json(self) -> dict[str, Any]:
        return {"basename": self.basename, "bytes": self.bytes, "hashes": dict(self.hashes)}


def _require(shard: dict[str, Any], key: str, types: type | tuple[type, ...], where: str) -> Any:
    if key not in shard:
        raise IndexFormatError(f"{where}: missing required field {key!r}.")
    value = shard[key]
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in _as_tuple(types)):
        raise IndexFormatError(f"{where}: field {key!r} has the wrong type ({value!r:.80}).")
    return value


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def validate_common_shard_fields(shard: Any, where: str) -> None:
    """Check the fields every shard format has; format-specific checks live in each reader."""
    if not isinstance(shard, dict):
        raise IndexFormatError(f"{where}: a shard entry must be a JSON object.")
    version = _require(shard, "version", int, where)
    if version != INDEX_VERSION:
        raise IndexFormatError(f"{where}: unsupported shard version {version}; expected 2.")
    _require(shard, "format", str, where)
    samples = _require(shard, "samples", int, where)
    if samples < 0:
        raise IndexFormatError(f"{where}: 'samples' is negative ({samples}).")
    compression = shard.get("compression")
    if compression is not None and not (
        isinstance(compression, str) and is_compression(compression)
    ):
        raise IndexFormatError(f"{where}: unknown compression {compression!r}.")
    hashes = shard.get("hashes", [])
    if not isinstance(hashes, list) or not all(isinstance(h, str) and is_hash(h) for h in hashes):
        raise IndexFormatError(
            f"{where}: 'hashes' must be a list of known hash names, got {hashes!r:.80}."
        )
    size_limit = shard.get("size_limit")
    if size_limit is not None and (not isinstance(size_limit, int) or isinstance(size_limit, bool)):
        raise IndexFormatError(f"{where}: 'size_limit' must be an integer or null.")


#: Sample offsets are uint32, so no file a shard's offsets point into reaches 4 GiB.
MAX_SHARD_FILE_BYTES = (1 << 32) - 1


def validate_shard_files(
    shard: dict[str, Any], roles: tuple[str, ...], table_role: str, where: str
) -> None:
    """Check the ``raw_<role>``/``zip_<role>`` entries of a shard: well-formed, names that stay
    inside the dataset directory, and sizes that can hold the shard's samples.

    The size checks are what keep a forged ``samples`` from costing memory: per-sample
    bookkeeping (epoch plans, offsets) is sized by it before any shard is opened, and a file
    holding an offset table of ``samples + 1`` uint32s under 4 GiB bounds it.
    """
    compression = shard.get("compression")
    for role in roles:
        for kind in ("raw", "zip"):
            key = f"{kind}_{role}"
            value = shard.get(key)
            if kind == "zip" and value is None:
                if compression:
                    raise IndexFormatError(
                        f"{where}: compression is {compression!r} but {key!r} is missing."
                    )
                continue
            info = FileInfo.from_json(value, where=f"{where} {key}")
            safe_join("/", info.basename, source=f"{where} {key}")
            if kind == "raw" and info.bytes > MAX_SHARD_FILE_BYTES:
                raise IndexFormatError(
                    f"{where} {key}: {info.bytes} bytes is more than a shard file can hold "
                    "(offsets are uint32)."
                )
    table = shard[f"raw_{table_role}"]["bytes"]
    needed = 4 + 4 * (shard["samples"] + 1)
    if table < needed:
        raise IndexFormatError(
            f"{where}: {shard['samples']} samples need an offset table of {needed} bytes, but "
            f"raw_{table_role} is {table} bytes; 'samples' or 'bytes' is wrong."
        )


def parse_index(text: str | bytes, *, source: str) -> list[dict[str, Any]]:
    """Parse and validate an index.json's contents; return its shard entries."""
    # Imported here: the reader registry imports this module for FileInfo.
    from streaming_lightning.format.readers import reader_class

    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as err:  # incl. JSONDecodeError, UnicodeDecodeError
        raise IndexFormatError(f"{source} is not valid JSON: {err}.") from err
    if not isinstance(obj, dict):
        raise IndexFormatError(f"{source}: expected a JSON object with 'shards' and 'version'.")
    if obj.get("version") != INDEX_VERSION:
        raise IndexFormatError(
            f"{source}: unsupported index version {obj.get('version')!r:.80}; expected 2 "
            "(written by mosaicml-streaming >= 0.2 or streaming-lightning)."
        )
    shards = obj.get("shards")
    if not isinstance(shards, list):
        raise IndexFormatError(f"{source}: missing or invalid 'shards' list.")
    for shard_id, shard in enumerate(shards):
        where = f"{source} shard {shard_id}"
        validate_common_shard_fields(shard, where)
        cls = reader_class(shard["format"], where=where)
        validate_shard_files(shard, cls.roles, cls.table_role, where)
        cls.validate_spec(shard, where)
    return shards


def load_index(path: str) -> list[dict[str, Any]]:
    """Read and validate the index.json at ``path``."""
    try:
        with open(path, "rb") as file:
            text = file.read()
    except FileNotFoundError:
        raise IndexFormatError(
            f"No index.json at {path}. Is this a dataset directory written by MDSWriter?"
        ) from None
    return parse_index(text, source=path)


def dump_index(shards: list[dict[str, Any]]) -> str:
    """Serialise an index exactly as mosaicml-streaming does (sorted keys, default separators)."""
    return json.dumps({"shards": shards, "version": INDEX_VERSION}, sort_keys=True)


def write_index(dirname: str, shards: list[dict[str, Any]]) -> str:
    """Atomically write ``dirname/index.json``; readers never see a partial index."""
    path = os.path.join(dirname, INDEX_BASENAME)
    atomic_write(path, dump_index(shards).encode("utf-8"), fsync=True)
    return path
