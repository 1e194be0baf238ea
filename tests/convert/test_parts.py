"""The engine-agnostic half of distributed conversion: parts per task attempt, merged by the
driver from the successful ones only; and importing it pulls in no engine."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streaming_lightning import LocalDataset
from streaming_lightning.convert import WriteSettings
from streaming_lightning.convert.parts import (
    PARTS_DIR,
    PartResult,
    attempt_name,
    check_output,
    commit,
    write_part,
)
from streaming_lightning.errors import ConfigError, EncodingError, StreamingError
from streaming_lightning.format.writer import OutputExistsError

SETTINGS = WriteSettings(columns={"x": "int"}, size_limit=200)


def part(out: Path, partition: int, values: range, attempt: int = 0) -> PartResult:
    return write_part(
        ({"x": v} for v in values), str(out), partition, attempt_name(attempt), SETTINGS
    )


def test_only_reported_attempts_are_merged_in_partition_order(tmp_path: Path) -> None:
    out = tmp_path / "out"
    check_output(str(out), exist_ok=False)
    second = part(out, 1, range(100, 150))
    part(out, 0, range(0, 30), attempt=0)  # a failed attempt: never reported
    first = part(out, 0, range(0, 50), attempt=1)
    empty = part(out, 2, range(0))
    result = commit(str(out), [second, empty, first], merge=True, started=time.monotonic())
    assert [s["x"] for s in LocalDataset(str(out))] == [*range(50), *range(100, 150)]
    assert (result.samples, result.partitions) == (100, 3)
    kept = {Path(r.directory).name for r in (first, second, empty)}
    assert set(os.listdir(out / PARTS_DIR)) == kept, "the failed attempt's part remains"


def test_a_partition_reported_twice_is_an_error(tmp_path: Path) -> None:
    out = tmp_path / "out"
    a, b = part(out, 0, range(5)), part(out, 0, range(5), attempt=1)
    with pytest.raises(StreamingError, match="Partition 0 reported twice"):
        commit(str(out), [a, b], merge=True, started=time.monotonic())


def test_all_empty_partitions_cannot_merge(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="every partition was empty"):
        commit(str(out), [part(out, 0, range(0))], merge=True, started=time.monotonic())


def test_bad_samples_name_the_partition_and_sample(tmp_path: Path) -> None:
    with pytest.raises(EncodingError, match="Partition 4, its sample 2"):
        write_part(
            iter([{"x": 1}, {"x": 2}, {"x": "three"}]),
            str(tmp_path),
            4,
            attempt_name(0),
            SETTINGS,
        )


def test_settings_and_output_are_checked_first(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Column 'x'"):
        WriteSettings(columns={"x": "no-such-encoding"})
    with pytest.raises(ConfigError, match="at least one column"):
        WriteSettings(columns={})
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    with pytest.raises(OutputExistsError):
        check_output(str(tmp_path / "busy"), exist_ok=False)
    check_output(str(tmp_path / "busy"), exist_ok=True)
    assert os.listdir(tmp_path / "busy") == []


def test_importing_conversion_imports_no_engine() -> None:
    code = (
        "import sys, streaming_lightning, streaming_lightning.convert; "
        "print(sorted(m for m in ('pyspark', 'ray', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
