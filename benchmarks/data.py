"""The benchmark datasets: generated once, written in every library's own format, reused.

Three sample kinds: ``tokens`` (a 128-token uint16 array + an int label, like a pre-tokenised
text corpus), ``image`` (100 KB of bytes + an int label, like encoded images) and ``jpeg`` (real
JPEG files in ImageNet's class-folder layout, the ``imagefolder`` format, which the other
formats are converted from: the image's bytes, class and index). Every library reads the same
samples; only the container differs (MDS for ours and mosaicml-streaming, which share the
format byte for byte; litdata's chunks; webdataset's tars; plain files). Datasets are cached
under ``$SL_BENCH_DATA`` (default: a per-user temp dir) so the many cases and repetitions do
not rewrite gigabytes; each is built in a temp dir and renamed into place, so an interrupted
build is never mistaken for a finished one.
"""

from __future__ import annotations

import getpass
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

TOKENS = 128
IMAGE_BYTES = 100_000
SHARD_BYTES = 1 << 26  # 64 MiB, mosaicml-streaming's default size_limit, for every format
#: JPEG datasets hold a few hundred MB: smaller shards so each loader worker gets several.
JPEG_SHARD_BYTES = 1 << 23
JPEG_CLASSES = 16
JPEG_QUALITY = 90
#: (width, height) of the synthetic photos: ImageNet's most common shapes, landscape first.
JPEG_SHAPES = ((500, 375), (500, 375), (500, 333), (375, 500), (500, 400), (400, 300), (500, 500))


def shard_bytes(kind: str) -> int:
    return JPEG_SHARD_BYTES if kind == "jpeg" else SHARD_BYTES


def columns(kind: str) -> dict[str, str]:
    if kind == "tokens":
        return {"tokens": f"ndarray:uint16:{TOKENS}", "label": "int"}
    if kind == "image":
        return {"image": "bytes", "label": "int"}
    if kind == "jpeg":
        return {"image": "bytes", "label": "int", "index": "int"}
    raise ValueError(f"unknown sample kind {kind!r}")


def wnid(label: int) -> str:
    """An ImageNet-style class folder name (``n`` + 8 digits) for class ``label``."""
    return f"n{1440764 + 1000 * label:08d}"


def synthetic_jpeg(rng: np.random.Generator) -> bytes:
    """A photo-like JPEG: a smooth colour field (a coarse random grid, upsampled bicubically)
    under fine texture (noise at half resolution, upsampled), so it compresses like a photo —
    about 90 KB at quality 90 for 500x375 — and decodes like one."""
    from PIL import Image

    width, height = JPEG_SHAPES[int(rng.integers(len(JPEG_SHAPES)))]
    coarse = rng.integers(0, 256, (int(rng.integers(3, 7)), int(rng.integers(3, 9)), 3), np.uint8)
    field = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
    noise = rng.normal(128, 55, (height // 2, width // 2, 3)).clip(0, 255).astype(np.uint8)
    grain = Image.fromarray(noise).resize((width, height), Image.Resampling.BILINEAR)
    texture = (np.asarray(grain, np.float32) - 128) * rng.uniform(0.5, 1.0)
    pixels = (np.asarray(field, np.float32) + texture).clip(0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def image_files(path: str) -> list[tuple[str, int, int]]:
    """(file, class, index) for every image of an ImageNet-layout folder, in (class, name)
    order; the index is the number after the last ``_`` of the file name."""
    found = []
    for label, folder in enumerate(sorted(os.listdir(path))):
        for name in sorted(os.listdir(os.path.join(path, folder))):
            index = int(name.rsplit("_", 1)[1].split(".")[0])
            found.append((os.path.join(path, folder, name), label, index))
    return found


def samples(kind: str, n: int, start: int = 0, stop: int | None = None) -> Iterator[dict[str, Any]]:
    """The same ``n`` samples every time (seeded), generated lazily to keep memory flat;
    ``start``/``stop`` select a slice of them (for writers that split the work)."""
    stop = n if stop is None else stop
    rng = np.random.default_rng(0)
    if kind == "tokens":
        block = 65_536
        for begin in range(0, stop, block):
            # Every block is drawn, kept or not: the stream is one sequence.
            tokens = rng.integers(0, 60_000, (min(block, n - begin), TOKENS), dtype=np.uint16)
            for i in range(max(start - begin, 0), min(stop - begin, len(tokens))):
                yield {"tokens": tokens[i], "label": begin + i}
    elif kind == "image":
        # Half-compressible bytes, like encoded images with headers and flat regions.
        blobs = [rng.bytes(IMAGE_BYTES // 2) + bytes(IMAGE_BYTES // 2) for _ in range(64)]
        for i in range(start, stop):
            yield {"image": blobs[i % 64], "label": i}
    elif kind == "jpeg":
        # Converted from the image folder, as a user converts ImageNet: the files unchanged.
        files = image_files(dataset_dir("imagefolder", kind, n))
        for path, label, index in files[start:stop]:
            with open(path, "rb") as file:
                yield {"image": file.read(), "label": label, "index": index}
    else:
        raise ValueError(f"unknown sample kind {kind!r}")


def payload_bytes(kind: str, n: int) -> int:
    if kind == "jpeg":
        return sum(
            os.path.getsize(f) for f, _, _ in image_files(dataset_dir("imagefolder", kind, n))
        )
    return n * ((2 * TOKENS if kind == "tokens" else IMAGE_BYTES) + 8)


def _root() -> str:
    default = os.path.join(tempfile.gettempdir(), f"sl-bench-data-{getpass.getuser()}")
    return os.environ.get("SL_BENCH_DATA", default)


def _write_mds(kind: str, n: int, out: str) -> None:
    from streaming_lightning import MDSWriter

    with MDSWriter(out=out, columns=columns(kind), size_limit=shard_bytes(kind)) as writer:
        for sample in samples(kind, n):
            writer.write(sample)


#: From this many samples litdata is written by one process per core (it writes ~50k/s each).
LITDATA_PARALLEL_FROM = 1_000_000


def _write_litdata(kind: str, n: int, out: str) -> None:
    """One writer per core for large ``n``, each a contiguous slice as its own rank, then
    litdata's merge of their indexes (what its ``optimize`` does with several workers)."""
    from litdata.streaming.writer import BinaryWriter

    parts = max(1, os.cpu_count() or 1) if n >= LITDATA_PARALLEL_FROM else 1
    bounds = np.linspace(0, n, parts + 1).astype(int).tolist()
    if parts == 1:
        _write_litdata_part(kind, n, out, 0, 0, n)
    else:
        with ProcessPoolExecutor(parts) as pool:
            ranks = range(parts)
            list(
                pool.map(
                    _write_litdata_part,
                    [kind] * parts,
                    [n] * parts,
                    [out] * parts,
                    ranks,
                    bounds[:-1],
                    bounds[1:],
                )
            )
    BinaryWriter(out, chunk_bytes=shard_bytes(kind)).merge(num_workers=parts)


def _write_litdata_part(kind: str, n: int, out: str, rank: int, start: int, stop: int) -> None:
    from litdata.streaming.writer import BinaryWriter

    os.environ["DATA_OPTIMIZER_GLOBAL_RANK"] = str(rank)  # names its chunks and index file
    try:
        writer = BinaryWriter(out, chunk_bytes=shard_bytes(kind))
        for i, sample in enumerate(samples(kind, n, start, stop)):
            writer.add_item(i, sample)
        writer.done()
    finally:
        del os.environ["DATA_OPTIMIZER_GLOBAL_RANK"]


def _write_webdataset(kind: str, n: int, out: str) -> None:
    import webdataset as wds

    os.makedirs(out)
    body = {"tokens": "tokens.npy", "image": "image.bin", "jpeg": "jpg"}[kind]
    pattern = os.path.join(out, "shard-%06d.tar")
    with wds.ShardWriter(pattern, maxsize=shard_bytes(kind), verbose=0) as sink:
        for sample in samples(kind, n):
            value = sample["tokens"] if kind == "tokens" else sample["image"]
            key = sample.get("index", sample["label"])
            sink.write({"__key__": f"{key:09d}", body: value, "cls": sample["label"]})


def _write_imagefolder(kind: str, n: int, out: str) -> None:
    """``n`` synthetic JPEGs (seeded) in ``JPEG_CLASSES`` class folders of consecutive
    indices, named like ImageNet's training files (``<wnid>/<wnid>_<index>.JPEG``)."""
    if kind != "jpeg":
        raise ValueError(f"the imagefolder format holds JPEG files, not {kind!r} samples")
    rng = np.random.default_rng(0)
    for index in range(n):
        folder = os.path.join(out, wnid(index * JPEG_CLASSES // n))
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"{os.path.basename(folder)}_{index:07d}.JPEG"), "wb") as f:
            f.write(synthetic_jpeg(rng))


WRITERS: dict[str, Callable[[str, int, str], None]] = {
    "mds": _write_mds,
    "litdata": _write_litdata,
    "webdataset": _write_webdataset,
}
#: Formats only some kinds come in: the class folders of files the ``jpeg`` kind starts from.
SOURCES: dict[str, Callable[[str, int, str], None]] = {"imagefolder": _write_imagefolder}


def dataset_dir(fmt: str, kind: str, n: int) -> str:
    """The directory holding ``n`` samples of ``kind`` in format ``fmt``, built if missing."""
    path = os.path.join(_root(), f"{fmt}-{kind}-{n}")
    if os.path.isdir(path):
        return path
    os.makedirs(_root(), exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{fmt}-{kind}-{n}-", dir=_root())
    try:
        writer = WRITERS.get(fmt) or SOURCES[fmt]
        writer(kind, n, os.path.join(staging, "ds"))
        os.rename(os.path.join(staging, "ds"), path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def build(formats: Iterable[str], kind: str, n: int) -> list[str]:
    """:func:`dataset_dir` for several formats at once, the missing ones written by parallel
    processes (the writers are single-threaded Python; 10M samples take minutes each)."""
    formats = list(formats)
    if kind == "jpeg":
        dataset_dir("imagefolder", kind, n)  # the source every other format converts
    with ProcessPoolExecutor(max(1, min(len(formats), os.cpu_count() or 1))) as pool:
        return list(pool.map(dataset_dir, formats, [kind] * len(formats), [n] * len(formats)))


def shard_files(fmt: str, path: str) -> list[str]:
    """The data files of a dataset, in order (for the raw-read limit and for uploads)."""
    suffix = {"mds": ".mds", "litdata": ".bin", "webdataset": ".tar"}[fmt]
    return sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(suffix))
