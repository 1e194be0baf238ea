"""mp4 bytes → K evenly spaced RGB frames, square, as a uint8 array [K, S, S, 3].

Which frames: the clip's N frames are cut into K equal segments and one frame is taken from
each, at the same relative ``offset`` (0 ≤ offset < 1) inside every segment — 0.5 (the middle)
for evaluation, a random offset for training (the same for all K, so spacing stays even).

Why decode sequentially instead of seeking: WebVid clips are short (18 s on average, 360p),
and K frames spread over the whole clip touch most of its GOPs anyway. A seek lands on the
keyframe before each target and decodes forward from there, so with GOPs of G frames it still
decodes about K·G/2 frames — for K=8 and GOPs of a few seconds, most of the clip — plus eight
seeks and their pts-rounding pitfalls. So the clip is decoded once, front to back, stopping
after the last frame it needs; only the chosen frames are converted to RGB and resized. Long
videos (minutes) would want seeking; this recipe does not need it.

Square: the centre square of the frame (the short side) is resized to S × S with Pillow
(bilinear) — the aspect ratio is kept, the sides of a wide frame are cut, as CLIP-style
encoders do.

PyAV is imported lazily: only code that decodes or checks videos needs it.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

import numpy as np

from streaming_lightning.errors import CorruptDataError, MissingExtraError


def _av() -> Any:
    try:
        import av
    except ImportError:
        raise MissingExtraError(
            "The WebVid recipe decodes videos with PyAV: pip install av"
        ) from None
    return av


def frame_indices(total: int, count: int, offset: float = 0.5) -> np.ndarray:
    """The ``count`` frame numbers of a ``total``-frame clip: one per equal segment, at
    ``offset`` inside each (repeats when the clip has fewer frames than asked for)."""
    if total < 1 or count < 1:
        raise ValueError(f"Need at least one frame in and out, got total={total}, count={count}.")
    if not 0.0 <= offset < 1.0:
        raise ValueError(f"offset must be in [0, 1), got {offset}.")
    positions = (np.arange(count) + offset) * total / count
    return np.minimum(positions.astype(np.int64), total - 1)


def square(image: Any, size: int) -> np.ndarray:
    """The centre square of a PIL image, resized to ``size`` × ``size``, as uint8 [S, S, 3]."""
    from PIL import Image

    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    box = (left, top, left + side, top + side)
    resized = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR, box=box)
    return np.asarray(resized, np.uint8)


def decode_frames(
    data: bytes, num_frames: int, size: int, offset: float = 0.5, name: str = "video"
) -> np.ndarray:
    """``num_frames`` evenly spaced frames of the video ``data`` as uint8 [K, size, size, 3].

    ``name`` (a file or a sample) is what an error about undecodable bytes names.
    """
    av = _av()
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            stream = _video_stream(container, name)
            total = int(stream.frames or 0)
            if total > 0:
                wanted = frame_indices(total, num_frames, offset)
                picked = _pick(container.decode(stream), set(wanted.tolist()), size)
                if len(picked) == len(set(wanted.tolist())):
                    return np.stack([picked[i] for i in wanted.tolist()])
        # The container did not say how many frames there are, or said too many (a cut
        # tail): decode them all — the clip is short — and choose among those that exist.
        with av.open(io.BytesIO(data), mode="r") as container:
            stream = _video_stream(container, name)
            frames = [square(frame.to_image(), size) for frame in container.decode(stream)]
    except av.FFmpegError as err:
        raise CorruptDataError(f"{name}: not a decodable video ({err}).") from None
    if not frames:
        raise CorruptDataError(f"{name}: the video has no decodable frames.")
    return np.stack([frames[i] for i in frame_indices(len(frames), num_frames, offset).tolist()])


def check_video(data: bytes, name: str) -> None:
    """Raise CorruptDataError naming ``name`` unless ``data`` is a container with a video
    stream whose first frame decodes — what a converter can afford to check per file (a
    truncated mp4 often still opens, but then yields no frame)."""
    av = _av()
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            stream = _video_stream(container, name)
            for _ in container.decode(stream):
                return
    except av.FFmpegError as err:
        raise CorruptDataError(f"{name}: not a decodable video ({err}).") from None
    raise CorruptDataError(f"{name}: the video has no decodable frames.")


def _video_stream(container: Any, name: str) -> Any:
    if not container.streams.video:
        raise CorruptDataError(f"{name}: the file has no video stream.")
    return container.streams.video[0]


def _pick(frames: Iterable[Any], wanted: set[int], size: int) -> dict[int, np.ndarray]:
    """Decode front to back, keep the ``wanted`` frame numbers, stop after the last one."""
    picked: dict[int, np.ndarray] = {}
    last = max(wanted)
    for number, frame in enumerate(frames):
        if number in wanted:
            picked[number] = square(frame.to_image(), size)
        if number >= last:
            break
    return picked
