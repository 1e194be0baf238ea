"""Pile recipe: zstd JSON lines → one MDS sub-dataset per subset (documents, or packed tokens)
→ a mixture of subsets as LM samples → a few training steps."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zstandard

from recipes.common.convert import WriteOptions
from recipes.common.text_convert import TextOptions
from recipes.common.tokenizer import ByteTokenizer
from recipes.pile import StreamingPile
from recipes.pile.__main__ import main as pile_main
from recipes.pile.convert import convert, find_files
from recipes.pile.fixtures import FIXTURE_SUBSETS, write_raw
from recipes.pile.subsets import PILE_SUBSETS, slug
from streaming_lightning import StreamingDataset
from streaming_lightning.errors import ConfigError
from tests.recipes.helpers import check_trains_and_resumes, train_args

ROOT = Path(__file__).resolve().parents[2]
SEQ_LEN = 48


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_raw(str(tmp_path_factory.mktemp("pile")), train_files=3, docs_per_file=60)


def _options(out: Path, **kwargs: Any) -> WriteOptions:
    return WriteOptions(out=str(out), progress=False, **kwargs)


def _records(path: str) -> list[dict[str, Any]]:
    """A file's lines, decoded independently of the converter (whole-file decompression)."""
    data = Path(path).read_bytes()
    if path.endswith(".zst"):
        data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def _samples(root: Path) -> list[dict[str, Any]]:
    dataset = StreamingDataset(local=str(root))
    return [dataset[i] for i in range(dataset.size)]


def test_slugs_are_distinct_folder_names() -> None:
    folders = [slug(name) for name in PILE_SUBSETS]
    assert len(set(folders)) == len(PILE_SUBSETS) == 22
    assert slug("Gutenberg (PG-19)") == "gutenberg-pg-19" and slug("Pile-CC") == "pile-cc"
    assert all(f.replace("-", "").isalnum() and f == f.lower() for f in folders)


def test_each_subset_is_its_own_dataset_in_input_order(raw: str, tmp_path: Path) -> None:
    out = convert(raw, _options(tmp_path / "mds", compression="zstd"))
    files = find_files(raw)
    assert [Path(p).name for p in files["train"]] == [
        "00.jsonl.zst",
        "01.jsonl.zst",
        "02.jsonl.zst",
    ]
    for split, paths in files.items():
        records = [r for path in paths for r in _records(path)]
        expected: dict[str, list[dict[str, str]]] = {}
        for r in records:
            name = r["meta"]["pile_set_name"]
            expected.setdefault(name, []).append({"text": r["text"], "pile_set_name": name})
        assert out[f"{split}_subsets"] == {
            n: len(v) for n, v in sorted(expected.items(), key=lambda kv: slug(kv[0]))
        }
        root = tmp_path / "mds" / split
        listing = json.loads((root / "subsets.json").read_text())
        assert {v["name"]: v["samples"] for v in listing.values()} == {
            n: len(v) for n, v in expected.items()
        }
        for name, samples in expected.items():
            assert _samples(root / slug(name)) == samples  # per subset: in file and line order
        whole = _samples(root)  # the split's own index: every subset, every sample once
        assert Counter(json.dumps(s, sort_keys=True) for s in whole) == Counter(
            json.dumps(s, sort_keys=True) for v in expected.values() for s in v
        )
    assert len(expected) == len(FIXTURE_SUBSETS)


def test_tokens_are_packed_per_file_and_subset_and_cli_parallel_equals_serial(
    raw: str, tmp_path: Path
) -> None:
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    out = convert(raw, _options(serial), TextOptions("tokens", seq_len=SEQ_LEN))
    tok = ByteTokenizer()
    dropped = 0
    for name in FIXTURE_SUBSETS:
        rows = []
        for path in find_files(raw)["train"]:  # each file packs each subset on its own
            texts = [r["text"] for r in _records(path) if r["meta"]["pile_set_name"] == name]
            ids = np.concatenate([np.append(tok.encode(t), tok.eos_id) for t in texts] or [[]])
            count = len(ids) // SEQ_LEN
            rows.append(ids[: count * SEQ_LEN].reshape(count, SEQ_LEN))
            dropped += len(ids) % SEQ_LEN
        got = [s["tokens"] for s in _samples(serial / "train" / slug(name))]
        assert np.array_equal(np.stack(got), np.concatenate(rows))
    assert out["train_tokens_dropped"] == dropped and out["vocab_size"] == 257
    cmd = [sys.executable, "-m", "recipes.pile", "convert", "--in", raw, "--out", str(parallel)]
    cmd += ["--mode", "tokens", "--seq-len", str(SEQ_LEN), "--no-progress"]
    done = subprocess.run([*cmd, "--workers", "2"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for split in ("train", "val", "test"):
        assert (serial / split / "index.json").read_bytes() == (
            parallel / split / "index.json"
        ).read_bytes()
    # An interrupted conversion redoes only the files without a completion marker.
    (parallel / "train" / "index.json").unlink()
    (parallel / "train" / ".done" / "part-00001.json").unlink()
    (parallel / "train" / "pile-cc" / "part-00001" / "index.json").unlink()
    assert pile_main([*cmd[3:], "--workers", "1"]) == 0
    assert (serial / "train" / "index.json").read_bytes() == (
        parallel / "train" / "index.json"
    ).read_bytes()
    assert pile_main([*cmd[3:]]) == 0  # finished: kept as it is


def test_decompressed_jsonl_converts_the_same(raw: str, tmp_path: Path) -> None:
    plain = write_raw(str(tmp_path / "plain"), train_files=3, docs_per_file=60, compress=False)
    convert(raw, _options(tmp_path / "a"))
    convert(plain, _options(tmp_path / "b"))
    for split in ("train", "val", "test"):
        assert (tmp_path / "a" / split / "index.json").read_bytes() == (
            tmp_path / "b" / split / "index.json"
        ).read_bytes()
    (Path(plain) / "val.jsonl.zst").write_bytes((Path(raw) / "val.jsonl.zst").read_bytes())
    with pytest.raises(ConfigError, match="holds both val.jsonl and val.jsonl.zst"):
        find_files(plain)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not zstd at all", "line 1: cannot read the file"),
        (None, "line 2: not a JSON object"),
        (None, "line 2: no 'meta.pile_set_name'"),
    ],
    ids=["bad-zstd", "bad-json", "no-subset"],
)
def test_corrupt_files_are_named_with_the_line(
    tmp_path: Path, data: bytes | None, message: str
) -> None:
    folder = tmp_path / "raw" / "train"
    folder.mkdir(parents=True)
    path = folder / "00.jsonl.zst"
    if data is None:
        lines = ['{"text": "a", "meta": {"pile_set_name": "ArXiv"}}']
        lines.append("{not json" if "JSON" in message else '{"text": "b", "meta": {}}')
        lines.append('{"text": "c", "meta": {}}')
        data = zstandard.ZstdCompressor().compress("\n".join(lines).encode())
    path.write_bytes(data)
    with pytest.raises(ConfigError, match=f"00.jsonl.zst, {message}"):
        convert(str(tmp_path / "raw"), _options(tmp_path / "out"))
    truncated = tmp_path / "cut" / "val.jsonl.zst"
    truncated.parent.mkdir()
    whole = zstandard.ZstdCompressor().compress(
        b'{"text": "x", "meta": {"pile_set_name": "A"}}\n' * 200
    )
    truncated.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ConfigError, match="val.jsonl.zst, line .*: cannot read the file"):
        convert(str(tmp_path / "cut"), _options(tmp_path / "out2"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="No Pile files"):
        find_files(str(tmp_path / "empty"))


def test_mixture_streams_subsets_in_proportion(raw: str, tmp_path: Path) -> None:
    mds = tmp_path / "mds"
    convert(raw, _options(mds), TextOptions("tokens", seq_len=SEQ_LEN))
    sizes = {n: StreamingDataset(local=str(mds / "train" / slug(n))).size for n in FIXTURE_SUBSETS}
    mixture = StreamingPile(
        local=str(mds), split="train", subsets={"Pile-CC": 0.5, "arxiv": 0.5}, shuffle=False
    )
    assert len(mixture.streams) == 2 and mixture.seq_len == SEQ_LEN
    epoch = list(mixture)
    assert len(epoch) == mixture.size
    whole = sizes["Pile-CC"] + sizes["ArXiv"]
    assert abs(mixture.size - whole) <= 2  # proportions rescale the epoch to the streams' sum
    pile_cc = {bytes(np.asarray(s["tokens"])) for s in _samples(mds / "train" / "pile-cc")}
    from_cc = sum(bytes(s["input_ids"].numpy().astype(np.uint16)) in pile_cc for s in epoch)
    assert abs(from_cc - mixture.size / 2) <= 1, (from_cc, mixture.size)
    natural = StreamingPile(local=str(mds), split="train", subsets=["Github", "ArXiv"])
    assert natural.size == sizes["Github"] + sizes["ArXiv"]
    everything = StreamingPile(local=str(mds), split="train")
    assert everything.size == sum(sizes.values())
    with pytest.raises(ConfigError, match="not both"):
        StreamingPile(local=str(mds), split="train", subsets=["ArXiv"], streams=[{"local": "x"}])
    with pytest.raises(ConfigError, match="twice"):
        StreamingPile(local=str(mds), split="train", subsets=["ArXiv", "arxiv"])


def test_train_py_trains_a_mixture_checkpoints_and_resumes(raw: str, tmp_path: Path) -> None:
    mds = tmp_path / "mds"
    convert(raw, _options(mds), TextOptions("tokens", seq_len=32))
    args = train_args(mds, tmp_path, batch_size=4)
    args += ["model.seq_len=32", "model.d_model=32", "trainer.max_epochs=3"]
    args += ["data.options.subsets={Pile-CC: 0.6, Github: 0.4}"]
    check_trains_and_resumes("yamls/pile.yaml", args, tmp_path)
