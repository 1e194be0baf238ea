"""``streaming-lightning convert imagefolder``: a real ImageFolder tree (JPEG, PNG and WebP,
nested folders, a stray text file) converts sample for sample in (class, file) order with the
classes torchvision's ImageFolder would number; a corrupt image stops it naming the file."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from streaming_lightning import LocalDataset
from streaming_lightning.cli import main


def image(kind: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (12 + seed % 5, 10, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, kind)
    return out.getvalue()


def tree(root: Path) -> list[tuple[str, int, bytes]]:
    """(relative path, label, bytes) in the order the converter must write them."""
    layout = {
        "cat": ["b.jpg", "a.PNG", "sub/c.webp"],
        "ant": ["z.jpeg", "notes.txt"],
        "dog": ["x.png"],
    }
    kinds = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}
    written = {}
    for n, (cls, names) in enumerate(layout.items()):
        for m, name in enumerate(names):
            path = root / cls / name
            path.parent.mkdir(parents=True, exist_ok=True)
            suffix = path.suffix.lower()
            data = image(kinds[suffix], 10 * n + m) if suffix in kinds else b"not an image"
            path.write_bytes(data)
            written[f"{cls}/{name}"] = data
    order = [("ant/z.jpeg", 0), ("cat/a.PNG", 1), ("cat/b.jpg", 1), ("cat/sub/c.webp", 1),
             ("dog/x.png", 2)]  # fmt: skip
    return [(path, label, written[path]) for path, label in order]


def test_round_trip_with_imagefolder_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = tree(tmp_path / "raw")
    out = tmp_path / "mds"
    code = main(["convert", "imagefolder", "--in", str(tmp_path / "raw"), "--out", str(out),
                 "--workers", "2", "--no-progress"])  # fmt: skip
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "images: 5" in printed.out and "skipped_not_images: 1" in printed.out
    assert json.loads((out / "classes.json").read_text()) == ["ant", "cat", "dog"]
    got = [(s["path"], s["label"], s["image"]) for s in LocalDataset(str(out))]
    assert got == expected


def test_a_corrupt_image_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree(tmp_path / "raw")
    broken = tmp_path / "raw" / "dog" / "x.png"
    broken.write_bytes(broken.read_bytes()[:40])
    code = main(["convert", "imagefolder", "--in", str(tmp_path / "raw"), "--out",
                 str(tmp_path / "o"), "--no-progress"])  # fmt: skip
    assert code == 2 and f"{broken}: not a readable image" in capsys.readouterr().err
    assert main(["convert", "imagefolder", "--in", str(tmp_path / "nope"), "--out",
                 str(tmp_path / "o")]) == 2  # fmt: skip
