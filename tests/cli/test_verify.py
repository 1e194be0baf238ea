"""``streaming-lightning verify`` on real shards: intact, bit-flipped, truncated, missing,
structurally broken, unhashed, compressed, and remote (moto S3)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import pytest
import xxhash

from streaming_lightning import CSVWriter, JSONWriter
from streaming_lightning.cli import main
from tests.cli.datasets import write_dataset
from tests.fixtures.s3_server import S3Server


def _flip(path: Path, offset: int) -> bytes:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))
    return bytes(data)


def _digests(data: bytes) -> dict[str, str]:
    return {"sha1": hashlib.sha1(data).hexdigest(), "xxh64": xxhash.xxh64(data).hexdigest()}


def test_intact_dataset_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shards = write_dataset(str(tmp_path / "ds"), compression="zstd")
    assert len(shards) > 3
    assert main(["verify", str(tmp_path / "ds"), "--workers", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK: ") and f"{len(shards)} shards" in out
    assert "sha1/xxh64 digests" in out


def test_flipped_byte_names_the_shard_and_both_digests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shards = write_dataset(str(tmp_path / "ds"))
    victim = shards[1]["raw_data"]
    # Past the header, inside a sample: the structure stays valid, only digests change.
    data = _flip(tmp_path / "ds" / victim["basename"], victim["bytes"] - 3)
    assert main(["verify", str(tmp_path / "ds")]) == 1
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith(victim["basename"])]
    actual = _digests(data)
    for algo in ("sha1", "xxh64"):
        expected = victim["hashes"][algo]
        assert (
            f"{victim['basename']}: {algo} digest differs: expected {expected}, "
            f"actual {actual[algo]}"
        ) in lines
    assert len(lines) == 2  # nothing else is wrong with it
    assert out.splitlines()[-1].startswith("FAILED: 2 problems in 1 of ")


def test_compressed_shard_flip_is_reported_for_the_stored_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shards = write_dataset(str(tmp_path / "ds"), compression="zstd")
    stored = shards[0]["zip_data"]
    data = _flip(tmp_path / "ds" / stored["basename"], stored["bytes"] // 2)
    assert main(["verify", str(tmp_path / "ds")]) == 1
    out = capsys.readouterr().out
    for algo, actual in _digests(data).items():
        assert (
            f"{stored['basename']}: {algo} digest differs: expected {stored['hashes'][algo]}, "
            f"actual {actual}"
        ) in out
    assert "FAILED" in out
    # The dataset directory was only read: no decompressed copies were left in it.
    assert not any(name.endswith(".mds") for name in os.listdir(tmp_path / "ds"))


def test_truncated_and_missing_shards(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shards = write_dataset(str(tmp_path / "ds"))
    short, gone = shards[2]["raw_data"], shards[3]["raw_data"]
    path = tmp_path / "ds" / short["basename"]
    path.write_bytes(path.read_bytes()[:-10])
    (tmp_path / "ds" / gone["basename"]).unlink()
    assert main(["verify", str(tmp_path / "ds")]) == 1
    out = capsys.readouterr().out
    assert (
        f"{short['basename']}: size differs: expected {short['bytes']} bytes, "
        f"actual {short['bytes'] - 10} bytes"
    ) in out
    assert f"{gone['basename']}: missing: expected {gone['bytes']} bytes, found no file" in out
    assert out.splitlines()[-1].startswith("FAILED: 2 problems in 2 of ")


def test_broken_offset_table_is_caught_without_digests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shards = write_dataset(str(tmp_path / "ds"), hashes=())
    victim = shards[0]["raw_data"]
    _flip(tmp_path / "ds" / victim["basename"], 9)  # inside the first sample offsets
    assert main(["verify", str(tmp_path / "ds")]) == 1
    out = capsys.readouterr().out
    assert f"{victim['basename']}: unreadable: " in out
    assert "no digests were stored" in out


def test_dataset_without_hashes_passes_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_dataset(str(tmp_path / "ds"), hashes=(), compression="zstd")
    assert main(["verify", str(tmp_path / "ds")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK: ")
    assert "sizes and structure only: no digests were stored in index.json" in out


def test_user_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: No index.json")
    assert main(["verify", "nope://bucket/ds"]) == 2
    assert "error: Unsupported storage URL" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["verify", str(tmp_path), "--workers", "0"])
    assert exit_info.value.code == 2


def test_remote_dataset_is_fetched_checked_and_deleted(
    s3: S3Server,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bucket = s3.new_bucket()
    url = f"s3://{bucket}/ds"
    write_dataset(url, compression="zstd")
    client = s3.client()
    index = client.get_object(Bucket=bucket, Key="ds/index.json")["Body"].read()
    shards = json.loads(index)["shards"]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    assert main(["verify", url, "--workers", "2"]) == 0
    assert capsys.readouterr().out.startswith("OK: ")
    assert list(scratch.iterdir()) == []  # every downloaded shard was deleted

    # Corrupt one object in the bucket: the report names it and both digests.
    stored = shards[1]["zip_data"]
    body = client.get_object(Bucket=bucket, Key=f"ds/{stored['basename']}")["Body"].read()
    bad = bytearray(body)
    bad[len(bad) // 2] ^= 0x40
    client.put_object(Bucket=bucket, Key=f"ds/{stored['basename']}", Body=bytes(bad))
    client.delete_object(Bucket=bucket, Key=f"ds/{shards[2]['zip_data']['basename']}")
    assert main(["verify", url]) == 1
    out = capsys.readouterr().out
    for algo, actual in _digests(bytes(bad)).items():
        assert (
            f"{stored['basename']}: {algo} digest differs: expected {stored['hashes'][algo]}, "
            f"actual {actual}"
        ) in out
    assert f"{shards[2]['zip_data']['basename']}: missing" in out
    assert list(scratch.iterdir()) == []
    assert main(["verify", f"s3://{bucket}/nothing-here"]) == 2


@pytest.mark.parametrize("writer", [CSVWriter, JSONWriter])
def test_formats_with_meta_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], writer: type[CSVWriter]
) -> None:
    out = tmp_path / "ds"
    with writer(
        out=str(out), columns={"x": "int", "s": "str"}, compression="zstd", hashes=["xxh64"]
    ) as w:
        for i in range(50):
            w.write({"x": i, "s": f"v{i}"})
    assert main(["verify", str(out)]) == 0
    assert "(2 files" in capsys.readouterr().out  # each shard has a data and a meta file
    meta = next(out.glob("*.meta.zstd"))
    meta.write_bytes(meta.read_bytes()[:-1])
    assert main(["verify", str(out)]) == 1
    assert f"{meta.name}: size differs" in capsys.readouterr().out
