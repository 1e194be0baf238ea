"""Downloads survive a network that drops, stalls and truncates responses (loopback proxy in
front of the S3 server): every shard arrives complete and byte-exact, nothing partial lands."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from streaming_lightning import LocalDataset, MDSWriter
from streaming_lightning.format.index import load_index
from streaming_lightning.storage import registry
from streaming_lightning.storage.dataset_sync import download_dataset
from tests.fixtures.fault_proxy import FaultProxy
from tests.fixtures.s3_server import S3Server


@pytest.mark.slow
def test_dataset_of_hundreds_of_shards_downloads_exactly_through_faults(
    s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3.new_bucket()
    remote = f"s3://{bucket}/faulty"
    rng = np.random.default_rng(7)
    payloads = [rng.bytes(int(rng.integers(1000, 6000))) for _ in range(1700)]
    with MDSWriter(
        out=remote,
        columns={"blob": "bytes", "i": "int"},
        hashes=["xxh64"],
        size_limit="20kb",
        compression="zstd",
        max_workers=4,
    ) as writer:
        for i, blob in enumerate(payloads):
            writer.write({"blob": blob, "i": i})

    proxy = FaultProxy(
        int(s3.endpoint.rsplit(":", 1)[1]), fault_rate=0.25, seed=11, stall_limit_s=20
    )
    try:
        monkeypatch.setenv("S3_ENDPOINT_URL", proxy.url)
        registry.reset_backends()
        cache = tmp_path / "cache"
        shards = download_dataset(
            remote, str(cache), workers=8, retry=30, timeout=1.5, validate_hash="xxh64"
        )
    finally:
        proxy.close()
        registry.reset_backends()

    assert len(shards) >= 300
    assert (
        proxy.counts["drop"] > 0 and proxy.counts["stall"] > 0 and proxy.counts["truncate"] > 0
    ), proxy.counts
    for shard in load_index(str(cache / "index.json")):
        path = cache / shard["zip_data"]["basename"]
        assert path.stat().st_size == shard["zip_data"]["bytes"]
    leftovers = [n for n in os.listdir(cache) if n.startswith(".") and n != ".locks"]
    assert leftovers == [], f"temporary files left in the cache: {leftovers}"
    ds = LocalDataset(str(cache), validate_hash="xxh64")
    assert [s["blob"] for s in ds] == payloads
