"""The conversion machinery every recipe shares: parts run in worker processes, one pool for a
conversion's splits, and grouped conversions (one sub-dataset per group) that resume by task."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from recipes.common.convert import (
    WriteOptions,
    convert_grouped_split,
    convert_split,
    shared_workers,
)
from recipes.common.text_convert import TextOptions
from recipes.common.tokenizer import ByteTokenizer
from streaming_lightning import StreamingDataset
from streaming_lightning.errors import ConfigError

COLUMNS = {"task": "int", "pid": "int"}


def encode_pid(task: int) -> Iterator[dict[str, int]]:
    for _ in range(3):
        yield {"task": task, "pid": os.getpid()}


def _pids(root: Path) -> set[int]:
    dataset = StreamingDataset(local=str(root))
    return {int(dataset[i]["pid"]) for i in range(dataset.size)}


def test_splits_share_one_pool_inside_shared_workers(tmp_path: Path) -> None:
    options = WriteOptions(out=str(tmp_path / "shared"), workers=2, progress=False)
    with shared_workers(2):
        convert_split(list(range(4)), encode_pid, COLUMNS, options, "a")
        convert_split(list(range(4)), encode_pid, COLUMNS, options, "b")
    first, second = _pids(tmp_path / "shared" / "a"), _pids(tmp_path / "shared" / "b")
    assert os.getpid() not in first | second
    assert len(first | second) <= 2  # the same two worker processes for both splits
    options = WriteOptions(out=str(tmp_path / "apart"), workers=2, progress=False)
    convert_split(list(range(4)), encode_pid, COLUMNS, options, "a")
    convert_split(list(range(4)), encode_pid, COLUMNS, options, "b")
    assert not _pids(tmp_path / "apart" / "a") & _pids(tmp_path / "apart" / "b")  # a pool each


def encode_groups(task: str) -> Generator[tuple[str, dict[str, Any]], None, dict[str, Any]]:
    """Task "n:bad" fails after writing to two groups; "../x" names a group outside."""
    number, _, flag = task.partition(":")
    for i in range(6):
        yield ("even" if i % 2 == 0 else "odd"), {"task": int(number), "pid": i}
        if flag == "bad" and i == 3:
            raise RuntimeError("the input broke half-way")
        if flag == "escape":
            yield "../outside", {"task": 0, "pid": 0}
    return {"seen": 6}


def test_grouped_split_resumes_by_task_and_never_lists_a_half_written_part(
    tmp_path: Path,
) -> None:
    options = WriteOptions(out=str(tmp_path / "out"), progress=False)
    with pytest.raises(RuntimeError, match="half-way"):
        convert_grouped_split(["0", "1:bad", "2"], encode_groups, COLUMNS, options, "train")
    root = tmp_path / "out" / "train"
    assert (root / ".done" / "part-00000.json").exists()
    assert not (root / ".done" / "part-00001.json").exists()
    assert not (root / "even" / "part-00001" / "index.json").exists()  # aborted, not finished
    done = convert_grouped_split(["0", "1", "2"], encode_groups, COLUMNS, options, "train")
    assert done["groups"] == {"even": 9, "odd": 9} and done["stats"] == [{"seen": 6}] * 3
    for group in ("even", "odd"):
        samples = StreamingDataset(local=str(root / group))
        tasks = [int(samples[i]["task"]) for i in range(samples.size)]
        assert tasks == [0, 0, 0, 1, 1, 1, 2, 2, 2]  # task order within each group
    assert StreamingDataset(local=str(root)).size == 18
    marker = json.loads((root / ".done" / "part-00001.json").read_text())
    assert marker["samples"] == {"even": 3, "odd": 3}


def test_grouped_split_refuses_a_group_outside_its_folder(tmp_path: Path) -> None:
    options = WriteOptions(out=str(tmp_path / "out"), progress=False)
    with pytest.raises(ConfigError, match="cannot write a sub-dataset named '../outside'"):
        convert_grouped_split(["0:escape"], encode_groups, COLUMNS, options, "train")
    assert not (tmp_path / "out" / "outside").exists()


def test_converters_and_their_workers_never_import_torch() -> None:
    """Every spawned conversion worker imports its recipe's convert module: without torch that
    takes a tenth of a second instead of about one (the package and the recipes load their
    dataset classes lazily)."""
    recipes = ("ade20k", "c4", "cifar10", "coco", "enwiki", "imagenet", "laion", "pile", "webvid")
    code = "import sys, streaming_lightning\n" + "".join(
        f"import recipes.{name}.convert\n" for name in recipes
    )
    code += "print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))"
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
    code = (
        "from recipes.coco import StreamingCOCO, collate_detection; print(StreamingCOCO.__name__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "StreamingCOCO"  # still importable from the package, on first use


def test_text_options_refuse_an_unknown_mode_or_a_sequence_too_short_to_learn_from() -> None:
    with pytest.raises(ConfigError, match="--mode must be one of"):
        TextOptions(mode="words")
    with pytest.raises(ConfigError, match="--seq-len must be >= 2"):
        TextOptions(mode="tokens", seq_len=1)
    assert not TextOptions().reports_tokenizer  # text with bytes: nothing written beside it
    assert TextOptions(mode="tokens").reports_tokenizer
    assert TextOptions(tokenizer="bpe").reports_tokenizer
    assert TextOptions().token_columns(ByteTokenizer()) == {"tokens": "ndarray:uint16:2048"}


def test_every_language_recipe_cli_refuses_a_bad_seq_len_before_reading(tmp_path: Path) -> None:
    flags = ["--in", str(tmp_path), "--out", str(tmp_path / "out"), "--mode", "tokens"]
    for recipe in ("c4", "enwiki", "pile"):
        proc = subprocess.run(
            [sys.executable, "-m", f"recipes.{recipe}", "convert", *flags, "--seq-len", "1"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode != 0 and "--seq-len must be >= 2" in proc.stderr, recipe
        assert not (tmp_path / "out").exists(), recipe
