"""Drive mosaicml-streaming 0.13.0 (the reference) from tests: write with its writers and read
with its readers, so interop is decided by the reference's own code."""

from __future__ import annotations

import json
import os
from typing import Any

from tests.conftest import require_peer

streaming = require_peer("streaming")

peer_decompress = streaming.base.compression.decompress
peer_reader_from_json = streaming.base.format.reader_from_json


def peer_read_all(dirname: str) -> list[dict[str, Any]]:
    """Every sample of ``dirname`` decoded by the reference's shard readers."""
    with open(os.path.join(dirname, "index.json")) as file:
        shards = json.load(file)["shards"]
    samples: list[dict[str, Any]] = []
    for shard in shards:
        for raw_key, zip_key in (("raw_data", "zip_data"), ("raw_meta", "zip_meta")):
            raw, zipped = shard.get(raw_key), shard.get(zip_key)
            if raw is None:
                continue
            raw_path = os.path.join(dirname, raw["basename"])
            if zipped and not os.path.exists(raw_path):
                with open(os.path.join(dirname, zipped["basename"]), "rb") as file:
                    data = peer_decompress(shard["compression"], file.read())
                with open(raw_path, "wb") as file:
                    file.write(data)
        reader = peer_reader_from_json(dirname, "", shard)
        samples.extend(
            reader.decode_sample(reader.get_sample_data(i)) for i in range(reader.samples)
        )
    return samples


def raw_bytes(dirname: str, info: dict[str, Any], compression: str | None) -> bytes:
    """The uncompressed bytes of a shard file, whether or not it is stored compressed."""
    with open(os.path.join(dirname, info["basename"]), "rb") as file:
        data = file.read()
    return peer_decompress(compression, data) if compression else data
