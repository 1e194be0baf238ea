"""``streaming-lightning convert <recipe>`` dispatches to the recipe's own converter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from recipes.cifar10.fixtures import write_raw
from streaming_lightning import StreamingDataset
from streaming_lightning.cli import main
from streaming_lightning.cli.convert import available_recipes


def test_convert_cifar10(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = write_raw(str(tmp_path / "raw"), per_batch=20, test=10)
    out = tmp_path / "mds"
    argv = ["convert", "cifar10", "--in", raw, "--out", str(out), "--no-progress"]
    assert main([*argv, "--hashes", "xxh64"]) == 0
    assert StreamingDataset(local=str(out), split="train").size == 100
    assert StreamingDataset(local=str(out), split="test").size == 10
    capsys.readouterr()
    assert main(["verify", str(out), "--split", "train"]) == 0
    assert "xxh64 digests" in capsys.readouterr().out


def test_recipe_help_and_unknown_recipes(capsys: pytest.CaptureFixture[str]) -> None:
    assert "cifar10" in available_recipes()
    with pytest.raises(SystemExit) as exit_info:
        main(["convert", "cifar10", "--help"])
    assert exit_info.value.code == 0
    assert "--in RAW" in capsys.readouterr().out  # the recipe's own options
    assert main(["convert", "no-such-recipe", "--in", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Unknown recipe 'no-such-recipe'. Available recipes: ")
    assert "cifar10" in err and "Traceback" not in err
    assert main(["convert"]) == 2
    assert "cifar10" in capsys.readouterr().err
    # The recipe's own argument errors keep argparse's exit code.
    with pytest.raises(SystemExit) as exit_info:
        main(["convert", "cifar10", "--out", "x"])
    assert exit_info.value.code == 2


def test_importing_the_cli_imports_no_recipe() -> None:
    code = "import sys, streaming_lightning.cli; print(sorted(m for m in sys.modules if m.startswith('recipes')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
