"""Every cloud backend, end to end: MDSWriter uploads a compressed, hashed dataset to the
service (a real server on 127.0.0.1), the CLI-level downloader fetches it with hash checks,
and every sample reads back."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streaming_lightning import LocalDataset, MDSWriter
from streaming_lightning.storage import list_objects
from streaming_lightning.storage.dataset_sync import download_dataset


def _remote(service: str, request: pytest.FixtureRequest) -> str:
    prefix = f"ds-{uuid.uuid4().hex[:8]}"
    if service == "s3":
        return f"s3://{request.getfixturevalue('s3').new_bucket()}/{prefix}"
    if service == "gs":
        return f"gs://{request.getfixturevalue('gcs_emulator').new_bucket()}/{prefix}"
    if service == "azure":
        return f"azure://{request.getfixturevalue('azurite').create_container()}/{prefix}"
    if service == "oci":
        handle: Any = request.getfixturevalue("oci_server")
        return handle.url(prefix)
    raise AssertionError(service)


@pytest.mark.parametrize("service", ["s3", "gs", "azure", "oci"])
def test_write_to_cloud_and_read_back(
    service: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    remote = _remote(service, request)
    rng = np.random.default_rng(5)
    rows = [
        {"tokens": rng.integers(0, 50000, 32, dtype=np.uint16), "text": f"row {i}", "label": i}
        for i in range(600)
    ]
    columns = {"tokens": "ndarray:uint16:32", "text": "str", "label": "int"}
    with MDSWriter(
        out=remote, columns=columns, compression="zstd", hashes=["sha1", "xxh64"], size_limit="8kb"
    ) as writer:
        for row in rows:
            writer.write(row)
    listed = list_objects(remote + "/")
    assert listed[0].endswith("/index.json") and len(listed) >= 5
    download_dataset(remote, str(tmp_path / "cache"), validate_hash="sha1", workers=4)
    ds = LocalDataset(str(tmp_path / "cache"), validate_hash="xxh64")
    assert len(ds) == 600
    for i in (0, 299, 599):
        assert ds[i]["text"] == rows[i]["text"] and ds[i]["label"] == i
        assert np.array_equal(ds[i]["tokens"], rows[i]["tokens"])
