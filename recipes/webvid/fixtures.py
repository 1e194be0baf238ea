"""A small dataset in WebVid's exact raw layout — the metadata CSV with the release's header and
real mp4 files in ``<videos>/<page_dir>/<videoid>.mp4`` — for tests and demos, no download.

Clips are learnable and checkable on purpose: each class has its own background colour and a
white square moving in its own direction (the caption says which), and the background
brightens frame by frame, so every frame of a clip is told apart from the others even after
lossy coding — tests can check which frames the decoder picked. Some CSV rows point to files
that were never written, as in every real crawl; one caption has a comma, quotes and non-ASCII
text, another a newline, as real CSVs do.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass

import numpy as np

from recipes.webvid.convert import CSV_FIELDS

#: (background colour name, RGB, direction the square moves).
CLASSES = (
    ("red", (200, 40, 40), "right"),
    ("green", (40, 180, 60), "left"),
    ("blue", (40, 60, 200), "down"),
    ("yellow", (200, 190, 40), "up"),
)
#: Encoders tried in order: whichever the installed PyAV wheel has.
CODECS = ("libx264", "h264", "mpeg4")


@dataclass(frozen=True)
class RawRow:
    """One CSV row as written, and what the converter should make of it."""

    videoid: int
    url: str
    duration: str
    seconds: float
    page_dir: str
    caption: str
    label: int
    #: Where the video is (or would be).
    path: str
    present: bool
    #: The clip's frames before coding, [F, H, W, 3] uint8.
    frames: np.ndarray


@dataclass(frozen=True)
class RawWebVid:
    csv: str
    videos: str
    rows: list[RawRow]


def synthetic_frames(label: int, frames: int, size: tuple[int, int]) -> np.ndarray:
    """[frames, H, W, 3] uint8 for class ``label`` at ``size`` = (width, height)."""
    width, height = size
    _, colour, direction = CLASSES[label % len(CLASSES)]
    side = max(2, min(width, height) // 4)
    out = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        progress = t / max(1, frames - 1)
        out[t] = np.array(colour, np.float64) * (0.3 + 0.6 * progress)
        x, y = (width - side) // 2, (height - side) // 2
        if direction in ("right", "left"):
            x = round(progress * (width - side))
            x = x if direction == "right" else width - side - x
        else:
            y = round(progress * (height - side))
            y = y if direction == "down" else height - side - y
        out[t, y : y + side, x : x + side] = 255
    return out


def encoder() -> str:
    """The first of CODECS the installed PyAV can encode with."""
    import av

    for name in CODECS:
        try:
            av.codec.Codec(name, "w")
        except Exception:  # unknown codec, or a decoder only: try the next
            continue
        return name
    raise RuntimeError(f"PyAV has none of the encoders {CODECS}; the fixtures need one.")


def encode_video(frames: np.ndarray, fps: int = 4, codec: str | None = None) -> bytes:
    """An mp4 of ``frames`` ([F, H, W, 3] uint8, even width and height) at high quality."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream(codec or encoder(), rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        if stream.codec_context.name == "libx264":
            stream.options = {"crf": "10"}
        else:
            stream.bit_rate = 4_000_000
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return buffer.getvalue()


def write_raw(
    root: str,
    videos: int = 6,
    frames: int = 12,
    size: tuple[int, int] = (32, 24),
    missing: int = 1,
    seed: int = 0,
    flat: bool = False,
    fps: int = 4,
) -> RawWebVid:
    """Write ``root/results_webvid.csv`` with ``videos + missing`` rows and ``root/videos``
    holding the ``videos`` present clips (``frames`` frames of ``size`` = (width, height)),
    under ``<page_dir>/`` unless ``flat``."""
    rng = np.random.default_rng(seed)
    total = videos + missing
    absent = {(j + 1) * total // (missing + 1) for j in range(missing)}
    ids = 1_000_000 + rng.choice(90_000_000, total, replace=False)
    codec = encoder()
    folder = os.path.join(root, "videos")
    rows: list[RawRow] = []
    for i, videoid in enumerate(ids.tolist()):
        label = i % len(CLASSES)
        colour, _, direction = CLASSES[label]
        caption = f"a white square moves {direction} over {colour}"
        if i == 1:
            caption += ', "quoted" — café'
        if i == 2:
            caption += "\nsecond line"
        page_dir = f"{i // 3 * 50 + 1:06d}_{i // 3 * 50 + 50:06d}"
        seconds = round(frames / fps)
        path = os.path.join(folder, *([] if flat else [page_dir]), f"{videoid}.mp4")
        clip = synthetic_frames(label, frames, size)
        rows.append(
            RawRow(
                videoid=videoid,
                url=f"https://ak.picdn.net/shutterstock/videos/{videoid}/preview/stock-footage.mp4",
                duration=f"PT{seconds // 3600:02d}H{seconds // 60 % 60:02d}M{seconds % 60:02d}S",
                seconds=float(seconds),
                page_dir=page_dir,
                caption=caption,
                label=label,
                path=path,
                present=i not in absent,
                frames=clip,
            )
        )
        if i not in absent:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as file:
                file.write(encode_video(clip, fps, codec))
    path = os.path.join(root, "results_webvid.csv")
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")  # as pandas' to_csv writes it
        writer.writerow(CSV_FIELDS)
        for row in rows:
            writer.writerow([row.videoid, row.url, row.duration, row.page_dir, row.caption])
    return RawWebVid(csv=path, videos=folder, rows=rows)
