"""C4 recipe: raw json.gz → MDS (text, or packed tokens) → LM samples → a few training steps."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from recipes.c4 import StreamingC4
from recipes.c4.__main__ import main as c4_main
from recipes.c4.convert import convert, find_files
from recipes.c4.fixtures import write_file, write_raw
from recipes.c4.task import TASK
from recipes.common.convert import WriteOptions
from recipes.common.gpt import ModelConfig
from recipes.common.metrics import batch_value
from recipes.common.text_convert import Packer, TextOptions
from recipes.common.tokenizer import ByteTokenizer, load, token_dtype
from streaming_lightning import StreamingDataset
from streaming_lightning.errors import ConfigError
from tests.recipes.helpers import check_trains_and_resumes, train_args

ROOT = Path(__file__).resolve().parents[2]
SEQ_LEN = 64


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_raw(str(tmp_path_factory.mktemp("c4")), files=3, docs_per_file=50)


def _documents(path: str) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as file:
        return [json.loads(line) for line in file]


def _options(out: Path, **kwargs: Any) -> WriteOptions:
    return WriteOptions(out=str(out), progress=False, **kwargs)


def _rows(root: Path, split: str) -> np.ndarray:
    dataset = StreamingDataset(local=str(root), split=split)
    return np.stack([np.asarray(dataset[i]["tokens"]) for i in range(dataset.size)])


def test_text_mode_round_trips_every_document_in_order(raw: str, tmp_path: Path) -> None:
    out = convert(raw, _options(tmp_path / "mds", compression="zstd"))
    assert set(out) == {"train", "validation"}
    for split, files in find_files(raw).items():
        expected = [doc for path in files for doc in _documents(path)]
        dataset = StreamingDataset(local=str(tmp_path / "mds"), split=split)
        assert [dataset[i] for i in range(dataset.size)] == expected
    texts = "".join(doc["text"] for doc in expected)
    assert "\n" in texts and any(ord(c) > 0xFFFF for c in texts)  # 4-byte UTF-8 survives


@pytest.mark.parametrize("tokenizer", ["byte", "bpe"])
def test_tokens_mode_packs_each_files_documents_and_eos(
    raw: str, tmp_path: Path, tokenizer: str
) -> None:
    mds = tmp_path / "mds"
    vocab = 400 if tokenizer == "bpe" else None
    out = convert(
        raw, _options(mds), TextOptions("tokens", tokenizer, SEQ_LEN, vocab, train_documents=100)
    )
    tok = load(str(mds / "tokenizer.json") if tokenizer == "bpe" else "byte")
    assert out["vocab_size"] == tok.vocab_size and tok.vocab_size <= 400
    for split, files in find_files(raw).items():
        rows = _rows(mds, split)
        assert rows.dtype == np.uint16 and rows.shape[1] == SEQ_LEN
        start = dropped = 0
        for path in files:  # one part per file, in order: the file's sequences are contiguous
            documents = [doc["text"] for doc in _documents(path)]
            ids = [tok.encode(text) for text in documents]
            assert [tok.decode(i) for i in ids] == documents
            stream = np.concatenate([np.append(i, tok.eos_id) for i in ids])
            count = len(stream) // SEQ_LEN
            assert np.array_equal(rows[start : start + count].ravel(), stream[: count * SEQ_LEN])
            start, dropped = start + count, dropped + len(stream) % SEQ_LEN
        assert start == len(rows)
        assert out[f"{split}_tokens_dropped"] == dropped
    samples = StreamingC4(local=str(mds), split="validation", seq_len=SEQ_LEN)
    assert samples[3]["input_ids"].dtype == torch.int64
    assert np.array_equal(samples[3]["input_ids"].numpy(), rows[3])
    with pytest.raises(ConfigError, match="model.seq_len=64"):
        StreamingC4(local=str(mds), split="train", seq_len=128)


def test_packer_and_token_dtype() -> None:
    packer = Packer(4, "uint16")
    assert packer.add(np.array([1, 2, 3])) == []
    rows = packer.add(np.array([4, 5, 6, 7, 8, 9]), np.array([256]))
    assert [r.tolist() for r in rows] == [[1, 2, 3, 4], [5, 6, 7, 8]] and packer.remainder == 2
    assert rows[0].dtype == np.uint16
    assert token_dtype(257) == token_dtype(65536) == "uint16" and token_dtype(65537) == "uint32"


def test_text_dataset_tokenises_truncates_and_pads(raw: str, tmp_path: Path) -> None:
    mds = tmp_path / "mds"
    convert(raw, _options(mds), TextOptions(tokenizer="bpe", vocab_size=300, train_documents=50))
    texts = [doc["text"] for doc in _documents(find_files(raw)["train"][0])]
    byte = StreamingC4(local=str(mds), split="train", seq_len=SEQ_LEN)
    bpe = StreamingC4(
        remote=str(mds), local=str(tmp_path / "cache"), split="train", seq_len=48, tokenizer="bpe"
    )
    assert (tmp_path / "cache" / "tokenizer.json").exists()  # fetched from next to the dataset
    for dataset, tok in ((byte, ByteTokenizer()), (bpe, load(str(mds / "tokenizer.json")))):
        length = dataset.seq_len
        short = next(i for i, t in enumerate(texts) if len(tok.encode(t)) < length - 1)
        long = next(i for i, t in enumerate(texts) if len(tok.encode(t)) > length)
        sample = dataset[short]
        ids = [*tok.encode(texts[short]).tolist(), tok.eos_id]
        assert sample["input_ids"].tolist() == ids + [tok.eos_id] * (length - len(ids))
        assert sample["loss_mask"].tolist() == [True] * len(ids) + [False] * (length - len(ids))
        sample = dataset[long]
        assert sample["input_ids"].tolist() == tok.encode(texts[long]).tolist()[:length]
        assert bool(sample["loss_mask"].all())


def test_parallel_cli_conversion_equals_serial_and_resumes(raw: str, tmp_path: Path) -> None:
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    convert(raw, _options(serial), TextOptions("tokens", seq_len=SEQ_LEN))
    # The converter's workers are spawned processes: run it as users do, from the CLI.
    cmd = [sys.executable, "-m", "recipes.c4", "convert", "--in", raw, "--out", str(parallel)]
    cmd += ["--mode", "tokens", "--seq-len", str(SEQ_LEN), "--no-progress"]
    done = subprocess.run([*cmd, "--workers", "2"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "train_tokens_dropped:" in done.stdout and "vocab_size: 257" in done.stdout
    for split in ("train", "validation"):
        assert np.array_equal(_rows(serial, split), _rows(parallel, split))
    # An interrupted conversion resumes: parts with an index are kept, the rest redone.
    (parallel / "train" / "index.json").unlink()
    (parallel / "train" / "part-00001" / "index.json").unlink()
    assert c4_main([*cmd[3:], "--workers", "1"]) == 0
    assert np.array_equal(_rows(serial, "train"), _rows(parallel, "train"))


@pytest.mark.parametrize(
    ("content", "line", "why"),
    [
        (b"not gzip at all", 1, "cannot read"),
        (None, 3, "not JSON"),
        (None, 2, "no 'text'"),
    ],
    ids=["bad-gzip", "bad-json", "missing-text"],
)
def test_corrupt_input_names_file_and_line(
    tmp_path: Path, content: bytes | None, line: int, why: str
) -> None:
    folder = tmp_path / "en"
    folder.mkdir()
    path = folder / "c4-train.00000-of-01024.json.gz"
    if content is not None:
        path.write_bytes(content)
    elif why == "not JSON":
        with gzip.open(path, "wt") as file:
            file.write('{"text": "a"}\n{"text": "b"}\n{"text": "c"\n')
    else:
        write_file(str(path), [{"text": "fine", "url": "u"}, {"url": "u"}])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match=f"c4-train.00000-of-01024.json.gz, line {line}: {why}"):
        convert(str(tmp_path), _options(tmp_path / "out"))


def test_cli_errors_exit_2_without_traceback(tmp_path: Path, raw: str) -> None:
    (tmp_path / "empty").mkdir()
    cmd = [sys.executable, "-m", "recipes.c4", "convert", "--out", str(tmp_path / "o")]
    done = subprocess.run(
        [*cmd, "--in", str(tmp_path / "empty")], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 2 and "No C4 files" in done.stderr
    assert "Traceback" not in done.stderr
    # In process from here on (cheaper): the same main() and exit codes.
    bad = ["convert", "--in", raw, "--out", str(tmp_path / "o"), "--vocab-size", "9"]
    assert c4_main(bad) == 2  # --vocab-size is for bpe
    tokenizer = tmp_path / "tok.json"
    args = ["--in", raw, "--out", str(tokenizer), "--vocab-size", "300"]
    assert c4_main(["train-tokenizer", *args, "--train-documents", "40"]) == 0
    assert c4_main(["train-tokenizer", *args]) == 2  # never overwritten without --force
    out = ["--in", raw, "--out", str(tmp_path / "o"), "--no-progress", "--mode", "tokens"]
    assert c4_main(["convert", *out, "--tokenizer", str(tokenizer)]) == 0
    assert (tmp_path / "o" / "tokenizer.json").read_bytes() == tokenizer.read_bytes()
    assert c4_main(["convert", *out, "--tokenizer", str(tmp_path / "missing.json")]) == 2
    other = tmp_path / "other.json"
    assert (
        c4_main(["train-tokenizer", "--in", raw, "--out", str(other), "--vocab-size", "280"]) == 0
    )
    assert c4_main(["convert", *out, "--tokenizer", str(other)]) == 2  # the data uses tok.json


def test_model_is_causal_and_loss_is_next_token_cross_entropy() -> None:
    torch.manual_seed(0)
    model = TASK.build_model(ModelConfig(seq_len=16))
    assert model.head.weight is model.token_embedding.weight  # type: ignore[union-attr]
    ids = torch.randint(0, 257, (2, 16))
    changed = ids.clone()
    changed[:, 10] = (ids[:, 10] + 1) % 257
    logits = model(ids)
    assert logits.shape == (2, 16, 257)
    assert torch.allclose(logits[:, :10], model(changed)[:, :10], atol=1e-6)
    assert not torch.allclose(logits[:, 10:], model(changed)[:, 10:])
    loss, metrics = TASK.loss(model, {"input_ids": ids})
    expected = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, 257), ids[:, 1:].ravel()
    )
    assert torch.allclose(loss, expected, atol=1e-5)
    assert torch.allclose(batch_value(metrics["perplexity"]), loss.exp())
    mask = torch.ones(2, 16, dtype=torch.bool)
    mask[:, 8:] = False  # padding: only targets 1..7 count
    masked, _ = TASK.loss(model, {"input_ids": ids, "loss_mask": mask})
    part = torch.nn.functional.cross_entropy(logits[:, :7].reshape(-1, 257), ids[:, 1:8].ravel())
    assert torch.allclose(masked, part, atol=1e-5)
    with pytest.raises(ConfigError, match="vocab_size"):
        TASK.build_model(ModelConfig(vocab_size=100))(ids)


def test_train_py_trains_checkpoints_and_resumes(raw: str, tmp_path: Path) -> None:
    convert(raw, _options(tmp_path / "mds", compression="zstd"), TextOptions("tokens", seq_len=32))
    model = ["model.seq_len=32", "model.d_model=32", "model.n_layers=1"]
    args = [*train_args(tmp_path / "mds", tmp_path, batch_size=8), *model]
    check_trains_and_resumes("yamls/c4.yaml", args, tmp_path)
