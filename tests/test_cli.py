from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from streaming_lightning import LocalDataset, MDSWriter
from streaming_lightning.cli import main
from tests.fixtures.s3_server import S3Server


def _dataset(out: str, n: int = 100) -> None:
    with MDSWriter(
        out=out,
        columns={"x": "int", "s": "str"},
        compression="zstd",
        hashes=["xxh64"],
        size_limit=500,
    ) as w:
        for i in range(n):
            w.write({"x": i, "s": f"v{i}"})


def test_inspect_local(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _dataset(str(tmp_path / "ds"))
    assert main(["inspect", str(tmp_path / "ds")]) == 0
    out = capsys.readouterr().out
    assert "samples      100" in out and "{'zstd':" in out and "x                    int" in out


def test_bad_input_is_a_clear_error_not_a_trace(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "streaming_lightning.cli", "inspect", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: No index.json") and "Traceback" not in proc.stderr


def test_s3_ls_inspect_download_merge(
    s3: S3Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = s3.new_bucket()
    for part in range(2):
        _dataset(f"s3://{bucket}/root/p{part}", n=30)
    assert main(["merge-index", f"s3://{bucket}/root"]) == 0
    assert main(["inspect", f"s3://{bucket}/root"]) == 0
    assert "samples      60" in capsys.readouterr().out
    assert main(["ls", f"s3://{bucket}/root/p1/"]) == 0
    listing = capsys.readouterr().out.split()
    assert f"s3://{bucket}/root/p1/index.json" in listing and len(listing) > 2
    assert (
        main(
            ["download", f"s3://{bucket}/root", str(tmp_path / "local"), "--validate-hash", "xxh64"]
        )
        == 0
    )
    assert [s["x"] for s in LocalDataset(str(tmp_path / "local"))] == list(range(30)) * 2
    assert main(["inspect", f"s3://{bucket}/missing"]) == 2


def test_console_script_lists_every_command() -> None:
    script = Path(sys.executable).with_name("streaming-lightning")
    proc = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
    for command in ("inspect", "ls", "download", "merge-index", "convert", "verify", "cache"):
        assert command in proc.stdout
    assert "simulate" in proc.stdout and "examples:" in proc.stdout


@pytest.mark.parametrize(
    "command", ["inspect", "ls", "download", "merge-index", "verify", "simulate", "convert"]
)
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: streaming-lightning {command}" in capsys.readouterr().out
    for action in ("ls", "clean"):
        with pytest.raises(SystemExit):
            main(["cache", action, "--help"])
        assert "--root" in capsys.readouterr().out
