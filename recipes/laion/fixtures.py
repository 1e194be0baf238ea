"""A small crawl in img2dataset's exact output layout, for tests and demos — no download.

Per shard: ``NNNNN.tar`` (``mode="tar"``, img2dataset's webdataset output) or a folder
``NNNNN/`` (``mode="files"``) with ``<key>.jpg`` / ``.txt`` / ``.json`` for each fetched
image; ``NNNNN.parquet`` listing every row, failed ones included (status
``failed_to_download``, no image); and ``NNNNN_stats.json``.

Images are learnable on purpose: the caption names the colour and shape drawn ("a red circle
on grey"), so a tiny CLIP's in-batch accuracy rises above chance within a few hundred steps.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterable
from typing import Any

import numpy as np

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 180, 60),
    "blue": (40, 60, 220),
    "yellow": (240, 220, 40),
    "purple": (140, 40, 170),
}
SHAPES = ("circle", "square", "triangle")
#: img2dataset's parquet columns (webdataset/files modes, LAION's extra columns kept).
PARQUET_COLUMNS = (
    "key",
    "url",
    "caption",
    "similarity",
    "status",
    "error_message",
    "width",
    "height",
    "original_width",
    "original_height",
    "exif",
    "sha256",
)


def draw(colour: str, shape: str, width: int, height: int, rng: np.random.Generator) -> bytes:
    """JPEG bytes of ``shape`` in ``colour`` on a noisy grey background."""
    from PIL import Image, ImageDraw

    noise = rng.normal(128, 20, (height, width, 3))
    image = Image.fromarray(np.clip(noise, 0, 255).astype(np.uint8))
    pen = ImageDraw.Draw(image)
    side = min(width, height) * rng.uniform(0.5, 0.8)
    left = rng.uniform(0, width - side)
    top = rng.uniform(0, height - side)
    box = (left, top, left + side, top + side)
    fill = COLOURS[colour]
    if shape == "circle":
        pen.ellipse(box, fill=fill)
    elif shape == "square":
        pen.rectangle(box, fill=fill)
    else:
        pen.polygon([(left, top + side), (left + side, top + side), (left + side / 2, top)], fill)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def _rows(
    shard: int, per_shard: int, failures: int, rng: np.random.Generator
) -> list[dict[str, Any]]:
    failed = set(rng.choice(per_shard, size=min(failures, per_shard), replace=False).tolist())
    rows = []
    for i in range(per_shard):
        key = f"{shard:05d}{i:04d}"
        colour = str(rng.choice(list(COLOURS)))
        shape = str(rng.choice(SHAPES))
        caption = f"a {colour} {shape} on grey"
        if i % 7 == 3:
            caption += " — café au lait, 東京"  # non-ASCII: several UTF-8 bytes per character
        row: dict[str, Any] = {
            "key": key,
            "url": f"https://images.example.com/{shard}/{i}.jpg",
            "caption": caption,
            "similarity": round(float(rng.uniform(0.25, 0.40)), 6),
            "status": "failed_to_download" if i in failed else "success",
            "error_message": "HTTP Error 404: Not Found" if i in failed else None,
            "width": None,
            "height": None,
            "original_width": None,
            "original_height": None,
            "exif": None,
            "sha256": None,
        }
        if i not in failed:
            width, height = (int(v) for v in rng.integers(40, 97, size=2))
            row.update(width=width, height=height, original_width=width, original_height=height)
            row["_jpg"] = draw(colour, shape, width, height, rng)
        rows.append(row)
    return rows


def _files(row: dict[str, Any], bad: set[str]) -> dict[str, bytes]:
    """The files img2dataset writes for a fetched row (a corrupt image for keys in ``bad``)."""
    jpg = row["_jpg"][: len(row["_jpg"]) // 2] if row["key"] in bad else row["_jpg"]
    meta = {k: v for k, v in row.items() if not k.startswith("_")}
    return {
        f"{row['key']}.jpg": jpg,
        f"{row['key']}.txt": row["caption"].encode(),
        f"{row['key']}.json": json.dumps(meta).encode(),
    }


def _arrow_type(column: str) -> Any:
    import pyarrow as pa

    if column == "similarity":
        return pa.float64()
    if column.endswith(("width", "height")):
        return pa.int64()
    return pa.string()


def write_raw(
    root: str,
    shards: int = 2,
    per_shard: int = 10,
    mode: str = "tar",
    failures: int = 2,
    seed: int = 0,
    bad: Iterable[str] = (),
) -> str:
    """Write ``shards`` img2dataset shards of ``per_shard`` rows into ``root``, ``failures`` of
    each shard's rows failed downloads; images of keys in ``bad`` are cut in half (corrupt).
    ``mode``: "tar" (webdataset output) or "files". Returns ``root``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if mode not in ("tar", "files"):
        raise ValueError(f"mode must be 'tar' or 'files', got {mode!r}")
    rng = np.random.default_rng(seed)
    bad = set(bad)
    os.makedirs(root, exist_ok=True)
    for shard in range(shards):
        name = f"{shard:05d}"
        rows = _rows(shard, per_shard, failures, rng)
        fetched = [row for row in rows if row["status"] == "success"]
        if mode == "tar":
            with tarfile.open(os.path.join(root, f"{name}.tar"), "w") as tar:
                for row in fetched:
                    for member, data in _files(row, bad).items():
                        info = tarfile.TarInfo(member)
                        info.size, info.mtime = len(data), 1_700_000_000
                        tar.addfile(info, io.BytesIO(data))
        else:
            os.makedirs(os.path.join(root, name), exist_ok=True)
            for row in fetched:
                for member, data in _files(row, bad).items():
                    with open(os.path.join(root, name, member), "wb") as file:
                        file.write(data)
        schema = pa.schema([(column, _arrow_type(column)) for column in PARQUET_COLUMNS])
        table = pa.table({c: [row[c] for row in rows] for c in PARQUET_COLUMNS}, schema=schema)
        pq.write_table(table, os.path.join(root, f"{name}.parquet"))
        stats = {
            "count": len(rows),
            "successes": len(fetched),
            "failed_to_download": len(rows) - len(fetched),
            "failed_to_resize": 0,
            "duration": 1.0,
            "start_time": 1_700_000_000.0,
            "end_time": 1_700_000_001.0,
            "status_dict": {
                "success": len(fetched),
                "HTTP Error 404: Not Found": len(rows) - len(fetched),
            },
        }
        with open(os.path.join(root, f"{name}_stats.json"), "w") as file:
            json.dump(stats, file)
    return root
