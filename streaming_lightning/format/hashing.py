"""Hash algorithms for shard integrity, by name: every hashlib algorithm plus xxHash.

Digests are lowercase hex of the whole file, as mosaicml-streaming writes them into
``index.json``. Names follow that library (``sha1``, ``sha3_256``, ``xxh64``, ``xxh3_128`` ...).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import xxhash

from streaming_lightning.errors import HashError


def _collect() -> dict[str, Callable[[], Any]]:
    algorithms: dict[str, Callable[[], Any]] = {}
    for name in sorted(hashlib.algorithms_available):
        # shake_* need a length argument; names without a hashlib attribute are OpenSSL aliases.
        if hasattr(hashlib, name) and not name.startswith("shake_"):
            algorithms[name] = getattr(hashlib, name)
    for name in sorted(xxhash.algorithms_available):
        algorithms[name] = getattr(xxhash, name)
    return algorithms


_ALGORITHMS = _collect()


def get_hashes() -> set[str]:
    """Every supported hash name."""
    return set(_ALGORITHMS)


def is_hash(name: str) -> bool:
    """Whether ``name`` is a supported hash."""
    return name in _ALGORITHMS


def validate_hashes(names: list[str] | tuple[str, ...] | None) -> list[str]:
    """Check hash names for a writer; mosaicml-streaming requires them unique and sorted."""
    names = list(names or [])
    for name in names:
        if not is_hash(name):
            raise HashError(f"Unknown hash {name!r}. Supported: {', '.join(sorted(_ALGORITHMS))}.")
    if names != sorted(set(names)):
        raise HashError(
            f"Hashes must be unique and sorted (got {names}); use {sorted(set(names))}."
        )
    return names


def hash_bytes(name: str, data: bytes | memoryview) -> str:
    """Hex digest of ``data`` under algorithm ``name``."""
    factory = _ALGORITHMS.get(name)
    if factory is None:
        raise HashError(f"Unknown hash {name!r}. Supported: {', '.join(sorted(_ALGORITHMS))}.")
    hasher = factory()
    hasher.update(data)
    return str(hasher.hexdigest())


def hash_file(name: str, path: str, chunk_size: int = 1 << 22) -> str:
    """Hex digest of the file at ``path``, streamed so large shards need no extra memory."""
    factory = _ALGORITHMS.get(name)
    if factory is None:
        raise HashError(f"Unknown hash {name!r}. Supported: {', '.join(sorted(_ALGORITHMS))}.")
    hasher = factory()
    with open(path, "rb") as file:
        while chunk := file.read(chunk_size):
            hasher.update(chunk)
    return str(hasher.hexdigest())
