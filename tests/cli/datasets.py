"""Small real MDS datasets for the CLI tests."""

from __future__ import annotations

import json
import os

from streaming_lightning import MDSWriter


def write_dataset(
    out: str,
    n: int = 300,
    *,
    compression: str | None = None,
    hashes: tuple[str, ...] = ("sha1", "xxh64"),
    size_limit: int = 1500,
) -> list[dict]:  # type: ignore[type-arg]
    """Write ``n`` samples in several shards to ``out`` (a directory or URL); return the index's
    shard entries (read back from a local ``out``, else an empty list)."""
    with MDSWriter(
        out=out,
        columns={"x": "int", "s": "str"},
        compression=compression,
        hashes=list(hashes),
        size_limit=size_limit,
    ) as writer:
        for i in range(n):
            writer.write({"x": i, "s": f"value-{i}"})
    if "://" in out:
        return []
    with open(os.path.join(out, "index.json")) as file:
        return json.load(file)["shards"]  # type: ignore[no-any-return]
