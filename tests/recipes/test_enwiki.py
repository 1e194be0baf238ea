"""EnWiki recipe: the text dump's part files and eval.txt → MDS (articles, or packed tokens) →
LM samples → a few training steps."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from recipes.common.convert import WriteOptions
from recipes.common.text_convert import TextOptions
from recipes.common.tokenizer import ByteTokenizer
from recipes.enwiki import StreamingEnWiki
from recipes.enwiki.__main__ import main as enwiki_main
from recipes.enwiki.convert import convert, find_files
from recipes.enwiki.fixtures import write_raw
from streaming_lightning import StreamingDataset
from streaming_lightning.errors import ConfigError
from tests.recipes.helpers import check_trains_and_resumes, train_args

ROOT = Path(__file__).resolve().parents[2]
SEQ_LEN = 64


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_raw(str(tmp_path_factory.mktemp("enwiki")), parts=3, articles_per_part=30)


def _options(out: Path, **kwargs: Any) -> WriteOptions:
    return WriteOptions(out=str(out), progress=False, **kwargs)


def _lines(path: str) -> list[str]:
    """The documents as mosaicml-streaming's converter reads them (text mode, universal
    newlines): the non-blank lines, stripped."""
    with open(path, encoding="utf-8") as file:
        return [line.strip() for line in file if line.strip()]


def _rows(root: Path, split: str) -> np.ndarray:
    dataset = StreamingDataset(local=str(root), split=split)
    return np.stack([np.asarray(dataset[i]["tokens"]) for i in range(dataset.size)])


def test_text_mode_keeps_every_article_in_order(raw: str, tmp_path: Path) -> None:
    out = convert(raw, _options(tmp_path / "mds", compression="zstd:7"))
    assert set(out) == {"train", "val"}
    files = find_files(raw)
    assert [Path(p).name for p in files["train"]] == [f"part-{i:05d}-of-00500" for i in range(3)]
    for split, paths in files.items():
        expected = [line for path in paths for line in _lines(path)]
        dataset = StreamingDataset(local=str(tmp_path / "mds"), split=split)
        assert [dataset[i]["text"] for i in range(dataset.size)] == expected
        assert all(text == text.strip() and text for text in expected)
    assert any(ord(c) > 0xFFFF for text in expected for c in text)  # 4-byte UTF-8 survives


def test_tokens_mode_packs_each_file_and_cli_parallel_equals_serial(
    raw: str, tmp_path: Path
) -> None:
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    out = convert(raw, _options(serial), TextOptions("tokens", seq_len=SEQ_LEN))
    tok = ByteTokenizer()
    for split, paths in find_files(raw).items():
        rows, start, dropped = _rows(serial, split), 0, 0
        assert rows.shape[1] == SEQ_LEN and rows.dtype == np.uint16
        for path in paths:
            ids = np.concatenate([np.append(tok.encode(t), tok.eos_id) for t in _lines(path)])
            count = len(ids) // SEQ_LEN
            assert np.array_equal(rows[start : start + count].ravel(), ids[: count * SEQ_LEN])
            start, dropped = start + count, dropped + len(ids) % SEQ_LEN
        assert start == len(rows) and out[f"{split}_tokens_dropped"] == dropped
    cmd = [sys.executable, "-m", "recipes.enwiki", "convert", "--in", raw, "--out", str(parallel)]
    cmd += ["--mode", "tokens", "--seq-len", str(SEQ_LEN), "--no-progress", "--workers", "2"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "vocab_size: 257" in done.stdout
    for split in ("train", "val"):
        assert np.array_equal(_rows(serial, split), _rows(parallel, split))
    # A rerun keeps the finished conversion; an interrupted one resumes file by file.
    assert enwiki_main([*cmd[3:-2], "--workers", "1"]) == 0
    (parallel / "train" / "index.json").unlink()
    (parallel / "train" / "part-00002" / "index.json").unlink()
    assert enwiki_main([*cmd[3:-2], "--workers", "1"]) == 0
    assert np.array_equal(_rows(serial, "train"), _rows(parallel, "train"))


def test_layout_errors_and_partial_dumps(raw: str, tmp_path: Path, capsys: Any) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="No EnWiki files .* part-00000-of-00500"):
        find_files(str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="no such folder"):
        find_files(str(tmp_path / "missing"))
    find_files(raw)
    assert "converting 3 of the dump's 500 train parts" in capsys.readouterr().err
    mixed = tmp_path / "mixed"
    write_raw(str(mixed), parts=1, articles_per_part=2)
    (mixed / "part-00001-of-00100").write_text("x\n")
    with pytest.raises(ConfigError, match="mixes parts of different dumps"):
        find_files(str(mixed))
    only_eval = tmp_path / "eval-only"
    only_eval.mkdir()
    (only_eval / "eval.txt").write_text("one article\n\ntwo\n", encoding="utf-8")
    assert convert(str(only_eval), _options(tmp_path / "o1")).keys() == {"val"}


def test_bad_text_is_named_with_its_line(tmp_path: Path) -> None:
    folder = tmp_path / "raw"
    folder.mkdir()
    (folder / "part-00000-of-00500").write_bytes(b"fine\nalso fine\n\xff\xfe broken\n")
    with pytest.raises(ConfigError, match=r"part-00000-of-00500, line 3: not UTF-8"):
        convert(str(folder), _options(tmp_path / "out"))
    assert enwiki_main(["convert", "--in", str(folder), "--out", str(tmp_path / "o")]) == 2


def test_dataset_reads_both_modes_and_refuses_other_data(raw: str, tmp_path: Path) -> None:
    convert(raw, _options(tmp_path / "text"))
    convert(raw, _options(tmp_path / "tokens"), TextOptions("tokens", seq_len=SEQ_LEN))
    text = StreamingEnWiki(local=str(tmp_path / "text"), split="val", seq_len=32)
    first = _lines(find_files(raw)["val"][0])[0]
    expected = ByteTokenizer().encode(first)[:32]
    assert text[0]["input_ids"].tolist() == expected.tolist()
    tokens = StreamingEnWiki(local=str(tmp_path / "tokens"), split="val")
    assert tokens.seq_len == SEQ_LEN and tokens[1]["input_ids"].dtype == torch.int64
    other = tmp_path / "other"
    from streaming_lightning import MDSWriter

    with MDSWriter(out=str(other), columns={"image": "bytes"}) as writer:
        writer.write({"image": b"x"})
    with pytest.raises(ConfigError, match="not a EnWiki dataset .* recipes.enwiki convert"):
        StreamingEnWiki(local=str(other))


def test_train_py_trains_checkpoints_and_resumes(raw: str, tmp_path: Path) -> None:
    mds = tmp_path / "mds"
    convert(raw, _options(mds), TextOptions("tokens", seq_len=32))
    args = train_args(mds, tmp_path, batch_size=4)
    args += ["model.seq_len=32", "model.d_model=32", "trainer.max_epochs=3"]
    check_trains_and_resumes("yamls/enwiki.yaml", args, tmp_path)
