"""ImageNet-style training input: JPEGs decoded with Pillow and random-resized-cropped to 224 in
a DataLoader's workers, shuffled, in batches: images/s once the loader is running.

Every library reads the same JPEG files (``data`` kind ``jpeg``: an ImageNet-layout folder,
which ``imagefolder`` reads file by file and every other format is converted from) and every
sample goes through the same function, :func:`augment` (the ImageNet recipe's Pillow
RandomResizedCrop + flip, its box drawn from the image's index), so each image costs the same
decode and resize whichever library delivers it: only the data path differs (how the bytes
reach the worker, how the library shuffles and splits the epoch, how batches reach the main
process). The library's dataset files are read once before the clock, so every library starts
from the same warm page cache ("data cached locally").

The clock starts once every worker has delivered its first batch (starting workers is
first_batch's business; the workers decode their first batches side by side, so counting from
the first one alone would credit the second for free) and stops at the end of the epoch; the
epoch's wall time including start-up is reported too, and the CPU time the whole epoch took
(main process and workers) per image: what the data path costs whatever else the machine is
running, where images/s depends on the cores left free. ``other_cores`` says how many cores
other programs kept busy meanwhile (machine-wide busy time less this run's), so a reader can
tell a slow library from a busy machine. Each run checks that every image arrived, as uint8
``3 x 224 x 224`` tensors.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from benchmarks import data
from benchmarks.cases.iterate import PADDING_SLACK, Coverage
from benchmarks.harness import CaseSpec, Metric
from benchmarks.libraries import get
from benchmarks.measure import Clock, warm_page_cache

# The recipe's own transform (Pillow and numpy, no torchvision). Imported here, before the
# loader forks its workers, so no worker imports it on the clock.
from recipes.imagenet.transforms import open_image, train_transform

#: ``in-memory`` is the limit: the JPEG bytes already in memory, the same transform and loader.
LIBRARIES = [
    "streaming-lightning",
    "imagefolder",
    "webdataset",
    "mosaicml-streaming",
    "litdata",
    "in-memory",
]

SPEC = CaseSpec(
    name="throughput",
    libraries=LIBRARIES,
    params=[{"n": 2560, "batch": 64, "workers": 2}],
    quick_params=[{"n": 384, "batch": 64, "workers": 2}],
    metrics=[
        Metric("images_per_s", "images/s"),
        Metric("epoch_s", "s", higher_is_better=False),
        Metric("cpu_ms_per_image", "ms", higher_is_better=False),
        Metric("other_cores", "cores", higher_is_better=False),
        Metric("images", "images"),
    ],
)

__all__ = ["CROP", "SPEC", "augment", "environment", "run"]
CROP = 224
SEED = 0


@contextmanager
def environment(params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    data.build({get(lib).format for lib in SPEC.libraries}, "jpeg", params["n"])
    yield {}


def augment(sample: dict[str, Any]) -> dict[str, Any]:
    """Decode, RandomResizedCrop to ``CROP`` and flip: a ``3 x CROP x CROP`` uint8 tensor
    (normalising is left to the GPU, as fast pipelines do). The random draws are seeded by the
    image's index, so every library crops every image the same way."""
    index = int(sample["index"])
    pixels = train_transform(
        open_image(sample["image"]), CROP, np.random.default_rng((SEED, index))
    )
    # Channels first, in a writable copy (Pillow's pixels are read-only), as collation wants.
    image = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))
    return {"image": image, "label": int(sample["label"]), "index": index}


def cpu_seconds() -> float:
    """User + system CPU time of this process and its waited-for children (loader workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def busy_seconds() -> float:
    """CPU time every program on the machine has used (``/proc/stat``; steal counts as busy:
    a core the hypervisor gave away is one this run did not get). 0 where there is none."""
    try:
        with open("/proc/stat") as file:
            fields = [int(v) for v in file.readline().split()[1:9]]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def run(library: str, params: dict[str, Any]) -> dict[str, float]:
    lib = get(library)
    lib.preload()
    n, size = params["n"], params["batch"]
    path = data.dataset_dir(lib.format, "jpeg", n)
    warm_page_cache(path)
    dataset = lib.open_transformed(path, augment, batch_size=size)
    coverage = Coverage(n, library)
    steady_images = 0
    cpu_before, busy_before = cpu_seconds(), busy_seconds()
    with Clock() as epoch:
        loader = lib.loader(dataset, batch_size=size, num_workers=params["workers"])
        batches = iter(loader)
        warmup = [next(batches) for _ in range(max(1, params["workers"]))]
        with Clock() as steady:
            for batch in batches:
                coverage.add(batch["index"])
                steady_images += len(batch["index"])
        del batches, loader  # joins the workers: their CPU time is counted from here
    cpu = cpu_seconds() - cpu_before
    others = max(0.0, busy_seconds() - busy_before - cpu) if busy_before else 0.0
    image = warmup[0]["image"]
    if tuple(image.shape[1:]) != (3, CROP, CROP) or image.dtype != torch.uint8:
        raise AssertionError(f"{library} delivered {image.dtype} images of {tuple(image.shape)}")
    for batch in warmup:
        coverage.add(batch["index"])
    coverage.check(slack=PADDING_SLACK)
    return {
        "images_per_s": steady_images / steady.seconds,
        "epoch_s": epoch.seconds,
        "cpu_ms_per_image": cpu / n * 1e3,
        "other_cores": others / epoch.seconds,
        "images": float(coverage.seen.sum()),
    }
