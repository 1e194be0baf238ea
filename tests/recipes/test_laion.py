"""LAION recipe: img2dataset output (tar or files) → MDS → image/token tensors → a tiny CLIP."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from recipes.common.convert import WriteOptions
from recipes.laion import StreamingLAION
from recipes.laion.convert import convert
from recipes.laion.dataset import byte_tokens
from recipes.laion.fixtures import write_raw
from recipes.laion.task import ModelConfig, build_model, loss
from streaming_lightning import StreamingDataset
from streaming_lightning.errors import ConfigError, UnsafePathError
from tests.recipes.helpers import check_trains_and_resumes, train_args

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", params=["tar", "files"])
def raw(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_raw(str(tmp_path_factory.mktemp(f"laion-{request.param}")), mode=request.param)


def _options(out: Path, **kwargs: Any) -> WriteOptions:
    return WriteOptions(out=str(out), progress=False, **kwargs)


def _expected(raw: str) -> tuple[list[dict[str, Any]], int]:
    """The fetched rows of every shard in order, with their image bytes read straight from the
    tar or folder (independently of the converter), and the count of failed rows."""
    samples, failed = [], 0
    for shard in sorted(name[:-8] for name in os.listdir(raw) if name.endswith(".parquet")):
        files: dict[str, bytes] = {}
        if os.path.isdir(os.path.join(raw, shard)):
            for name in os.listdir(os.path.join(raw, shard)):
                files[name] = Path(raw, shard, name).read_bytes()
        else:
            with tarfile.open(os.path.join(raw, f"{shard}.tar")) as tar:
                for member in tar:
                    files[member.name] = tar.extractfile(member).read()  # type: ignore[union-attr]
        for row in pq.read_table(os.path.join(raw, f"{shard}.parquet")).to_pylist():
            if row["status"] != "success":
                failed += 1
                assert f"{row['key']}.jpg" not in files
                continue
            assert json.loads(files[f"{row['key']}.json"])["caption"] == row["caption"]
            samples.append(row | {"jpg": files[f"{row['key']}.jpg"]})
    return samples, failed


def _stored(out: Path) -> list[dict[str, Any]]:
    dataset = StreamingDataset(local=str(out), split="train")
    return [dataset[i] for i in range(dataset.size)]


def test_convert_keeps_every_fetched_image_byte_for_byte(raw: str, tmp_path: Path) -> None:
    report = convert(raw, _options(tmp_path / "mds"))
    expected, failed = _expected(raw)
    assert failed == 4 and len(expected) == 16
    assert report["samples"] == 16 and report["failed_rows"] == 4
    assert report["below_min_similarity"] == 0 and report["bad_images_skipped"] == 0
    stored = _stored(tmp_path / "mds")
    assert [s["key"] for s in stored] == [e["key"] for e in expected]  # parquet order
    for sample, row in zip(stored, expected):
        assert sample["jpg"] == row["jpg"]  # never re-encoded
        assert sample["caption"] == row["caption"]
        assert sample["url"] == row["url"]
        assert sample["similarity"] == row["similarity"]
        assert (sample["width"], sample["height"]) == (row["width"], row["height"])
    assert any("café" in s["caption"] for s in stored)


def test_min_similarity_keeps_only_samples_at_or_above_it(raw: str, tmp_path: Path) -> None:
    expected, _ = _expected(raw)
    threshold = float(np.median([row["similarity"] for row in expected]))
    report = convert(raw, _options(tmp_path / "mds"), min_similarity=threshold)
    kept = [row["key"] for row in expected if row["similarity"] >= threshold]
    assert [s["key"] for s in _stored(tmp_path / "mds")] == kept
    assert report["samples"] == len(kept)
    assert report["below_min_similarity"] == len(expected) - len(kept) > 0


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recipes.laion", "convert", *args, "--no-progress"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_parallel_cli_conversion_equals_serial(tmp_path: Path) -> None:
    raw = write_raw(str(tmp_path / "raw"), shards=3, per_shard=6, mode="tar", failures=1)
    convert(raw, _options(tmp_path / "serial"))
    # The converter's workers are spawned processes: run it as users do, from the CLI.
    done = _cli("--in", raw, "--out", str(tmp_path / "parallel"), "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert "samples: 15" in done.stdout and "failed_rows: 3" in done.stdout
    assert _stored(tmp_path / "parallel") == _stored(tmp_path / "serial")


def test_corrupt_image_is_named_or_skipped_with_skip_bad(tmp_path: Path) -> None:
    raw = write_raw(str(tmp_path / "raw"), mode="tar", bad=["000010003"])
    with pytest.raises(ConfigError, match=r"shard 00001 .*key 000010003: not a decodable image"):
        convert(raw, _options(tmp_path / "strict"))
    report = convert(raw, _options(tmp_path / "lenient"), skip_bad=True)
    assert report["samples"] == 15 and report["bad_images_skipped"] == 1
    assert "000010003" not in [s["key"] for s in _stored(tmp_path / "lenient")]
    # From the CLI: exit code 2 and one line naming the shard and key, no traceback.
    failed = _cli("--in", raw, "--out", str(tmp_path / "cli"))
    assert failed.returncode == 2, failed.stderr
    assert "key 000010003" in failed.stderr and "--skip-bad" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_missing_image_file_is_named(tmp_path: Path) -> None:
    raw = write_raw(str(tmp_path / "raw"), shards=1, mode="files", failures=0)
    os.remove(os.path.join(raw, "00000", "000000004.jpg"))
    with pytest.raises(ConfigError, match=r"shard 00000 .*key 000000004: no image file"):
        convert(raw, _options(tmp_path / "strict"))
    report = convert(raw, _options(tmp_path / "lenient"), skip_bad=True)
    assert report["samples"] == 9 and report["bad_images_skipped"] == 1


@pytest.mark.parametrize("member", ["../escaped.jpg", "/tmp/escaped.jpg", "C:\\escaped.jpg"])
def test_tar_members_escaping_the_shard_are_refused(tmp_path: Path, member: str) -> None:
    raw = write_raw(str(tmp_path / "raw"), shards=1, mode="tar")
    with tarfile.open(os.path.join(raw, "00000.tar"), "a") as tar:
        info = tarfile.TarInfo(member)
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    with pytest.raises(UnsafePathError, match=r"00000\.tar: member .*escaped\.jpg"):
        convert(raw, _options(tmp_path / "out"))
    assert not (tmp_path / "escaped.jpg").exists()


def test_parquet_keys_naming_other_paths_are_refused(tmp_path: Path) -> None:
    # A key naming a path outside the shard folder is never looked up.
    files = write_raw(str(tmp_path / "files"), shards=1, mode="files", failures=0)
    (tmp_path / "secret.jpg").write_bytes(b"outside")
    table = pq.read_table(os.path.join(files, "00000.parquet")).to_pylist()
    table[0]["key"] = "../../secret"
    pq.write_table(pa.Table.from_pylist(table), os.path.join(files, "00000.parquet"))
    with pytest.raises(UnsafePathError, match="not a plain file name"):
        convert(files, _options(tmp_path / "out2"))


def test_bad_layouts_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No img2dataset shards"):
        convert(str(tmp_path), _options(tmp_path / "o"))
    raw = write_raw(str(tmp_path / "raw"), shards=2, mode="tar")
    with pytest.raises(ConfigError, match="Nothing to convert.*4 have no image.*16 are below"):
        convert(raw, _options(tmp_path / "o"), min_similarity=0.9)
    os.remove(os.path.join(raw, "00001_stats.json"))
    with pytest.raises(ConfigError, match="00001_stats.json"):
        convert(raw, _options(tmp_path / "o"))
    os.remove(os.path.join(raw, "00001.parquet"))
    with pytest.raises(ConfigError, match="no 00001.parquet"):
        convert(raw, _options(tmp_path / "o"))
    assert not (tmp_path / "o").exists()  # checked before any work


@pytest.fixture(scope="module")
def mds(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("laion-mds")
    raw = write_raw(str(root / "raw"), mode="tar")
    convert(raw, _options(root / "mds"))
    return str(root / "mds")


def test_dataset_returns_images_and_byte_tokens(mds: str) -> None:
    stored = StreamingDataset(local=mds, split="train")
    eval_set = StreamingLAION(local=mds, split="train", augment=False, max_caption_len=24)
    sample = eval_set[3]
    assert sample["image"].shape == (3, 64, 64) and sample["image"].dtype == torch.float32
    assert sample["tokens"].shape == (24,) and sample["tokens"].dtype == torch.int64
    caption = stored[3]["caption"].encode("utf-8")
    expected = [b + 1 for b in caption[:24]] + [0] * max(0, 24 - len(caption))
    assert sample["tokens"].tolist() == expected
    assert byte_tokens("é", 4).tolist() == [0xC3 + 1, 0xA9 + 1, 0, 0]
    long = next(i for i in range(stored.size) if len(stored[i]["caption"].encode()) > 24)
    assert eval_set[long]["tokens"].min() > 0  # truncated: no padding left
    assert torch.equal(eval_set[3]["image"], sample["image"])  # no augmentation: fixed


def test_augmentation_is_seeded_by_epoch_and_index(mds: str) -> None:
    train = StreamingLAION(local=mds, split="train", image_size=32, shuffle=True)
    assert train.augment
    first = [train[i]["image"] for i in range(6)]
    assert first[0].shape == (3, 32, 32)
    again = StreamingLAION(local=mds, split="train", image_size=32, shuffle=True)
    assert all(torch.equal(again[i]["image"], first[i]) for i in range(6))
    plain = StreamingLAION(local=mds, split="train", image_size=32, augment=False)
    assert any(not torch.equal(plain[i]["image"], first[i]) for i in range(6))
    train.__dict__["_iterating_epoch"] = 1
    assert any(not torch.equal(train[i]["image"], first[i]) for i in range(6))
    with pytest.raises(ConfigError, match="image_size"):
        StreamingLAION(local=mds, split="train", image_size=0)


def test_model_loss_is_symmetric_infonce() -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(width=4, text_width=16, embed_dim=8))
    batch = {"image": torch.randn(5, 3, 32, 32), "tokens": torch.randint(1, 257, (5, 32))}
    batch["tokens"][0] = 0  # an empty caption still embeds
    value, metrics = loss(model, batch)
    assert value.ndim == 0 and math.isfinite(value.item())
    assert 0 <= metrics["accuracy"].item() <= 1
    value.backward()
    assert model.logit_scale.grad is not None

    class Fixed(torch.nn.Module):
        def __init__(self, logits: torch.Tensor) -> None:
            super().__init__()
            self.logits = logits

        def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
            return self.logits

    aligned, _ = loss(Fixed(torch.eye(3) * 50), batch)
    assert aligned.item() < 1e-6
    logits = torch.tensor([[0.0, 3.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 2.0]])
    value, metrics = loss(Fixed(logits), batch)
    targets = torch.arange(3)
    both = torch.nn.functional.cross_entropy(logits, targets) + torch.nn.functional.cross_entropy(
        logits.T, targets
    )
    assert torch.isclose(value, both / 2)  # image→text and text→image, averaged
    assert metrics["accuracy"].item() == pytest.approx(2 / 3)  # image 0 picks caption 1


def test_train_py_trains_checkpoints_and_resumes(mds: str, tmp_path: Path) -> None:
    args = [
        *train_args(mds, tmp_path, batch_size=4),
        "data.eval_split=null",
        "data.options.image_size=32",
        "model.width=4",
        "model.text_width=16",
    ]
    check_trains_and_resumes("yamls/laion.yaml", args, tmp_path)
