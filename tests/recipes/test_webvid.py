"""WebVid recipe: metadata CSV + mp4 crawl → MDS → decoded frames and byte tokens → a few
contrastive training steps."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from recipes.common.convert import WriteOptions
from recipes.webvid import StreamingWebVid
from recipes.webvid.__main__ import main
from recipes.webvid.convert import convert, parse_duration
from recipes.webvid.dataset import to_tensor, tokenize
from recipes.webvid.fixtures import RawWebVid, write_raw
from recipes.webvid.video import decode_frames, frame_indices, square
from streaming_lightning import StreamingDataset
from streaming_lightning.errors import ConfigError, CorruptDataError
from tests.recipes.helpers import check_trains_and_resumes, train_args

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> RawWebVid:
    return write_raw(str(tmp_path_factory.mktemp("webvid")), videos=6, missing=1)


@pytest.fixture(scope="module")
def mds(raw: RawWebVid, tmp_path_factory: pytest.TempPathFactory) -> str:
    out = str(tmp_path_factory.mktemp("webvid-mds"))
    convert(raw.csv, raw.videos, WriteOptions(out=out, progress=False), rows_per_part=2)
    return out


def _options(out: Path | str) -> WriteOptions:
    return WriteOptions(out=str(out), progress=False)


def _samples(root: str | Path, split: str = "train") -> list[dict]:
    dataset = StreamingDataset(local=str(root), split=split)
    return [dataset[i] for i in range(dataset.size)]


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The convert command in this process (exit code, stdout, stderr): the CLI's paths
    without a Python start-up each; only --workers > 1 needs a real subprocess."""
    capsys.readouterr()
    code = main(["convert", *args, "--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err


def test_convert_keeps_present_videos_and_metadata_and_counts_missing(
    raw: RawWebVid, tmp_path: Path
) -> None:
    out = convert(raw.csv, raw.videos, _options(tmp_path), rows_per_part=2)
    assert out["rows"] == 7 and out["missing"] == 1 and out["skipped"] == 0
    assert out["samples"] == 6 and out["train"].endswith("index.json")
    assert len(list((tmp_path / "train").glob("part-*"))) == 4  # ceil(7 rows / 2)
    present = [row for row in raw.rows if row.present]
    samples = _samples(tmp_path)
    assert len(samples) == len(present)
    for sample, row in zip(samples, present):
        assert sample["video"] == Path(row.path).read_bytes()
        assert sample["caption"] == row.caption
        assert sample["videoid"] == row.videoid
        assert sample["duration"] == row.seconds == 3.0
        assert sample["page_dir"] == row.page_dir and sample["url"] == row.url
    assert "café" in samples[1]["caption"] and "\n" in samples[2]["caption"]


def test_flat_video_folder_is_accepted(tmp_path: Path) -> None:
    flat = write_raw(str(tmp_path / "raw"), videos=2, missing=0, flat=True)
    assert not any(p.is_dir() for p in Path(flat.videos).iterdir())
    out = convert(flat.csv, flat.videos, _options(tmp_path / "mds"))
    assert out["samples"] == 2 and out["missing"] == 0
    assert [s["video"] for s in _samples(tmp_path / "mds")] == [
        Path(r.path).read_bytes() for r in flat.rows
    ]


def test_parallel_cli_equals_serial_and_resumes(
    raw: RawWebVid, mds: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "parallel"
    args = ["--csv", raw.csv, "--videos", raw.videos, "--out", str(out), "--rows-per-part", "2"]
    # The converter's workers are spawned processes: run it as users do, from the CLI.
    cmd = [sys.executable, "-m", "recipes.webvid", "convert", *args, "--no-progress"]
    done = subprocess.run(
        [*cmd, "--workers", "2"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "missing: 1" in done.stdout and "samples: 6" in done.stdout, done.stdout
    assert _samples(out) == _samples(mds)
    code, _, err = _cli(capsys, *args)
    assert code == 0 and "already converted" in err, err
    (out / "train" / "index.json").unlink()
    (out / "train" / "part-00002" / "index.json").unlink()
    kept = (out / "train" / "part-00001" / "index.json").stat().st_mtime_ns
    code, _, err = _cli(capsys, *args)
    assert code == 0, err
    assert (out / "train" / "part-00001" / "index.json").stat().st_mtime_ns == kept
    assert _samples(out) == _samples(mds)


def test_corrupt_video_is_named_or_skipped(
    raw: RawWebVid, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "raw"
    shutil.copytree(Path(raw.csv).parent, root)
    bad = root / Path(raw.rows[4].path).relative_to(Path(raw.csv).parent)
    bad.write_bytes(bad.read_bytes()[:-200])  # cut tail: the mp4 still opens, no frame decodes
    csv, videos = str(root / Path(raw.csv).name), str(root / "videos")
    with pytest.raises(ConfigError, match=rf"{bad.name}.*--skip-bad"):
        convert(csv, videos, _options(tmp_path / "a"))
    code, _, err = _cli(capsys, "--csv", csv, "--videos", videos, "--out", str(tmp_path / "b"))
    assert code == 2 and bad.name in err and err.startswith("error: ")
    code, out, err = _cli(
        capsys, "--csv", csv, "--videos", videos, "--out", str(tmp_path / "c"), "--skip-bad"
    )
    assert code == 0, err
    assert "skipped: 1" in out and "samples: 5" in out and bad.name in err
    assert raw.rows[4].videoid not in [s["videoid"] for s in _samples(tmp_path / "c")]


def test_bad_csv_is_named(
    raw: RawWebVid, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = Path(raw.csv).read_text(encoding="utf-8")
    csv = tmp_path / "meta.csv"
    csv.write_text(text.replace("page_dir", "folder", 1), encoding="utf-8")
    with pytest.raises(ConfigError, match="meta.csv.*lacks page_dir"):
        convert(str(csv), raw.videos, _options(tmp_path / "a"))
    csv.write_text(text.replace("PT00H00M03S", "3 seconds", 1), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"meta.csv:2: .*'3 seconds'"):
        convert(str(csv), raw.videos, _options(tmp_path / "a"))
    csv.write_text(text.replace(raw.rows[0].page_dir, "../../etc", 1), encoding="utf-8")
    with pytest.raises(ConfigError, match="leaves the videos directory"):
        convert(str(csv), raw.videos, _options(tmp_path / "a"))
    with pytest.raises(ConfigError, match="None of the 7 videos"):
        convert(raw.csv, str(tmp_path), _options(tmp_path / "a"))
    code, _, err = _cli(
        capsys, "--csv", str(tmp_path / "no.csv"), "--videos", raw.videos, "--out", "x"
    )
    assert code == 2 and "no.csv" in err


def test_parse_duration() -> None:
    assert parse_duration("PT00H00M11S") == 11.0
    assert parse_duration("PT1H2M3.5S") == 3723.5
    assert parse_duration("P1DT1S") == 86401.0
    for text in ("11", "PT", "P", "PT11", "11S", "P1DT"):
        with pytest.raises(ValueError):
            parse_duration(text)


def test_frames_are_evenly_spaced_and_decoded_in_place(raw: RawWebVid) -> None:
    assert frame_indices(12, 4).tolist() == [1, 4, 7, 10]
    assert frame_indices(12, 4, 0.0).tolist() == [0, 3, 6, 9]
    assert frame_indices(3, 6).tolist() == [0, 0, 1, 1, 2, 2]
    row = raw.rows[1]
    video = Path(row.path).read_bytes()
    references = np.stack([square(Image.fromarray(f), 16) for f in row.frames]).astype(float)
    for count, offset in ((4, 0.5), (4, 0.0), (3, 0.9), (12, 0.5), (20, 0.5)):
        frames = decode_frames(video, count, 16, offset)
        assert frames.shape == (count, 16, 16, 3) and frames.dtype == np.uint8
        errors = ((frames[:, None].astype(float) - references[None]) ** 2).mean(axis=(2, 3, 4))
        assert errors.argmin(axis=1).tolist() == frame_indices(12, count, offset).tolist()
    with pytest.raises(CorruptDataError, match="sample 7"):
        decode_frames(b"not a video" * 20, 4, 16, name="sample 7")
    with pytest.raises(CorruptDataError, match="sample 8.*no decodable frames"):
        decode_frames(video[:-200], 4, 16, name="sample 8")


def test_dataset_decodes_augments_deterministically_and_tokenizes(raw: RawWebVid, mds: str) -> None:
    options = {"local": mds, "split": "train", "num_frames": 4, "frame_size": 16}
    train = StreamingWebVid(**options, max_caption_len=64)
    assert train.augment
    sample = train[1]
    assert sample["frames"].shape == (4, 3, 16, 16) and sample["frames"].dtype == torch.float32
    caption = raw.rows[1].caption.encode("utf-8")
    assert sample["tokens"].dtype == torch.int64 and sample["tokens"].shape == (64,)
    assert sample["tokens"][: len(caption)].tolist() == [b + 1 for b in caption]
    assert not sample["tokens"][len(caption) :].any()
    assert tokenize("é" * 40, 8).tolist() == [0xC3 + 1, 0xA9 + 1] * 4
    for i in range(6):  # same (seed, epoch, index): the same frames
        assert torch.equal(train[i]["frames"], StreamingWebVid(**options)[i]["frames"])
    plain = StreamingWebVid(**options, augment=False)
    assert any(not torch.equal(train[i]["frames"], plain[i]["frames"]) for i in range(6))
    later = StreamingWebVid(**options)
    later.__dict__["_iterating_epoch"] = 1
    assert any(not torch.equal(train[i]["frames"], later[i]["frames"]) for i in range(6))
    video = Path(raw.rows[0].path).read_bytes()
    assert torch.equal(plain[0]["frames"], to_tensor(decode_frames(video, 4, 16)))


def test_train_py_trains_checkpoints_and_resumes(mds: str, tmp_path: Path) -> None:
    args = [
        *train_args(mds, tmp_path, batch_size=2),  # 3 steps an epoch: step 4 is mid-epoch
        "data.eval_split=null",
        "data.options.num_frames=3",
        "data.options.frame_size=16",
        "model.width=4",
        "model.embed_dim=8",
        "model.text_width=8",
    ]
    check_trains_and_resumes("yamls/webvid.yaml", args, tmp_path)
