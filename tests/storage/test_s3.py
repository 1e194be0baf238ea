"""S3 backend against a real S3 API (moto server on 127.0.0.1) through real boto3 calls."""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path

import numpy as np
import pytest

from streaming_lightning import LocalDataset, MDSWriter, merge_index
from streaming_lightning.errors import (
    RemoteNotFoundError,
    RemotePermissionError,
    StorageError,
    TransientStorageError,
)
from streaming_lightning.format import OutputExistsError
from streaming_lightning.storage import (
    download_file,
    list_objects,
    object_exists,
    registry,
    upload_file,
)
from streaming_lightning.storage.dataset_sync import download_dataset
from streaming_lightning.storage.s3 import S3Backend
from tests.fixtures.s3_server import CREDENTIALS, S3Server


def _file(path: Path, size: int, seed: int = 0) -> bytes:
    data = np.random.default_rng(seed).bytes(size)
    path.write_bytes(data)
    return data


def test_upload_download_list_exists(s3: S3Server, tmp_path: Path) -> None:
    bucket = s3.new_bucket()
    big = _file(tmp_path / "big", 12 << 20)  # above boto3's multipart threshold
    _file(tmp_path / "empty", 0)
    upload_file(str(tmp_path / "big"), f"s3://{bucket}/data/big.bin")
    upload_file(str(tmp_path / "empty"), f"s3://{bucket}/data/sub/empty.bin")
    upload_file(str(tmp_path / "empty"), f"s3://{bucket}/other.bin")
    assert download_file(f"s3://{bucket}/data/big.bin", str(tmp_path / "out" / "big")) == str(
        tmp_path / "out" / "big"
    )
    assert (tmp_path / "out" / "big").read_bytes() == big
    download_file(f"s3://{bucket}/data/sub/empty.bin", str(tmp_path / "out" / "empty"))
    assert (tmp_path / "out" / "empty").read_bytes() == b""
    assert list_objects(f"s3://{bucket}/data") == [
        f"s3://{bucket}/data/big.bin",
        f"s3://{bucket}/data/sub/empty.bin",
    ]
    assert object_exists(f"s3://{bucket}/other.bin")
    assert not object_exists(f"s3://{bucket}/data/nope")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".locks", "big", "empty"]


def test_missing_object_fails_fast_and_names_the_url(s3: S3Server, tmp_path: Path) -> None:
    bucket = s3.new_bucket()
    start = time.monotonic()
    with pytest.raises(RemoteNotFoundError, match=f"s3://{bucket}/missing.mds"):
        download_file(f"s3://{bucket}/missing.mds", str(tmp_path / "x"), retry=5)
    assert time.monotonic() - start < 2, "a 404 must not be retried"
    with pytest.raises(RemoteNotFoundError, match="s3://no-such-bucket-here/x"):
        download_file("s3://no-such-bucket-here/x", str(tmp_path / "y"), retry=5)
    assert sorted(os.listdir(tmp_path)) == [".locks"], "no temp or partial files are left"


def test_errors_never_contain_credentials(
    s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens on port 9
    registry.reset_backends()
    with pytest.raises(TransientStorageError) as info:
        download_file("s3://bucket/key", str(tmp_path / "x"), retry=1, timeout=1)
    message = str(info.value)
    assert "s3://bucket/key" in message and "2 attempts" in message
    assert (
        CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in message
        and CREDENTIALS["AWS_ACCESS_KEY_ID"] not in message
    )


def test_no_credentials_gives_advice(
    s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    registry.reset_backends()
    with pytest.raises(RemotePermissionError, match="no AWS credentials"):
        download_file("s3://bucket/key", str(tmp_path / "x"))


def test_writer_streams_a_dataset_to_s3_and_back(
    s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3.new_bucket()
    order: list[str] = []
    real_upload = S3Backend.upload

    def spy(self, path, url, timeout):  # type: ignore[no-untyped-def]
        real_upload(self, path, url, timeout)
        order.append(url.rsplit("/", 1)[-1])

    monkeypatch.setattr(S3Backend, "upload", spy)
    remote = f"s3://{bucket}/datasets/tokens"
    rows = [{"tokens": np.arange(64, dtype=np.uint16) + i, "label": i} for i in range(3000)]
    with MDSWriter(
        out=remote,
        columns={"tokens": "ndarray:uint16:64", "label": "int"},
        compression="zstd",
        hashes=["sha1", "xxh64"],
        size_limit="16kb",
        max_workers=4,
        progress_bar=True,
    ) as writer:
        for row in rows:
            writer.write(row)
    assert order[-1] == "index.json" and len(order) > 10, "index.json is uploaded last"
    assert not os.path.exists(writer.local), "remote-only writers remove their staging directory"
    shards = download_dataset(remote, str(tmp_path / "cache"), validate_hash="xxh64", workers=4)
    assert len(shards) == len(order) - 1
    ds = LocalDataset(str(tmp_path / "cache"), validate_hash="sha1")
    assert [int(s["label"]) for s in ds] == list(range(3000))
    assert np.array_equal(ds[1234]["tokens"], rows[1234]["tokens"])
    with pytest.raises(OutputExistsError, match=f"{remote}/index.json already exists"):
        MDSWriter(out=remote, columns={"x": "int"})


def test_keep_local_with_a_local_remote_pair(s3: S3Server, tmp_path: Path) -> None:
    bucket = s3.new_bucket()
    with MDSWriter(
        out=(str(tmp_path / "stage"), f"s3://{bucket}/p"), columns={"x": "int"}, keep_local=True
    ) as w:
        for i in range(10):
            w.write({"x": i})
    assert [s["x"] for s in LocalDataset(str(tmp_path / "stage"))] == list(range(10))
    assert list_objects(f"s3://{bucket}/p") == [
        f"s3://{bucket}/p/index.json",
        f"s3://{bucket}/p/shard.00000.mds",
    ]


def test_failed_upload_raises_and_publishes_no_index(s3: S3Server, tmp_path: Path) -> None:
    remote = "s3://bucket-that-does-not-exist/ds"
    with pytest.raises(StorageError, match="bucket-that-does-not-exist"):
        with MDSWriter(
            out=(str(tmp_path / "stage"), remote), columns={"x": "int"}, size_limit=300, retry=0
        ) as w:
            for i in range(200):
                w.write({"x": i})
    assert not os.path.exists(tmp_path / "stage" / "index.json")


def _download_in_process(endpoint: str, url: str, dest: str, counter, start) -> None:  # type: ignore[no-untyped-def]
    os.environ["S3_ENDPOINT_URL"] = endpoint
    real = S3Backend.download

    def counting(self, u, path, timeout):  # type: ignore[no-untyped-def]
        with counter.get_lock():
            counter.value += 1
        real(self, u, path, timeout)

    S3Backend.download = counting  # type: ignore[method-assign]
    start.wait(30)
    download_file(url, dest)


def test_concurrent_processes_download_a_shard_once(s3: S3Server, tmp_path: Path) -> None:
    bucket = s3.new_bucket()
    data = _file(tmp_path / "src", 8 << 20, seed=3)
    upload_file(str(tmp_path / "src"), f"s3://{bucket}/shard.00000.mds")
    ctx = mp.get_context("spawn")
    counter, start = ctx.Value("i", 0), ctx.Event()
    dest = str(tmp_path / "cache" / "shard.00000.mds")
    procs = [
        ctx.Process(
            target=_download_in_process,
            args=(s3.endpoint, f"s3://{bucket}/shard.00000.mds", dest, counter, start),
        )
        for _ in range(4)
    ]
    for proc in procs:
        proc.start()
    start.set()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    assert counter.value == 1, "the shard was downloaded more than once"
    assert (tmp_path / "cache" / "shard.00000.mds").read_bytes() == data
    assert sorted(os.listdir(tmp_path / "cache")) == [".locks", "shard.00000.mds"]


def test_merge_index_on_a_remote_root(s3: S3Server, tmp_path: Path) -> None:
    bucket = s3.new_bucket()
    root = f"s3://{bucket}/converted"
    for part in range(3):
        with MDSWriter(out=f"{root}/part{part}", columns={"x": "int"}, size_limit=400) as w:
            for i in range(40):
                w.write({"x": part * 100 + i})
    assert merge_index(root) == f"{root}/index.json"
    download_dataset(root, str(tmp_path / "all"))
    assert [s["x"] for s in LocalDataset(str(tmp_path / "all"))] == [
        p * 100 + i for p in range(3) for i in range(40)
    ]
    # The list form, with a local copy of the merged index.
    merge_index([f"{root}/part2/index.json", f"{root}/part0"], (str(tmp_path / "local"), root))
    assert (tmp_path / "local" / "index.json").read_bytes().count(b"part2/shard.") > 0
    download_dataset(root, str(tmp_path / "two"))
    assert [s["x"] for s in LocalDataset(str(tmp_path / "two"))][:2] == [200, 201]
