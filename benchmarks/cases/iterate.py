"""Iterate one epoch in one process, data already on local disk: samples/s and MB/s.

Every library reads the same samples from its own format (``benchmarks.data``), shuffled and
not; ``raw-read`` is the physical limit (plain file reads + one memcpy per sample, MDS bytes).
The clock covers creating the iterator and pulling every sample, and reading each large value
(``measure.touch``: a lazy view is not a delivered sample); the dataset object is built
before it (first-batch covers construction). Each run checks it got every sample exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from benchmarks import data
from benchmarks.harness import CaseSpec, Metric
from benchmarks.libraries import READERS, get
from benchmarks.measure import Clock, touch

PADDING_SLACK = 4096  # at most this many repeated samples (see Coverage)

SPEC = CaseSpec(
    name="iterate",
    libraries=[*READERS, "raw-read"],
    params=[
        {"kind": "tokens", "n": 200_000, "shuffle": False},
        {"kind": "tokens", "n": 200_000, "shuffle": True},
        {"kind": "image", "n": 10_000, "shuffle": False},
        {"kind": "image", "n": 10_000, "shuffle": True},
    ],
    quick_params=[
        {"kind": "tokens", "n": 20_000, "shuffle": True},
        {"kind": "image", "n": 300, "shuffle": False},
    ],
    metrics=[Metric("samples_per_s", "samples/s"), Metric("mb_per_s", "MB/s")],
)


@contextmanager
def environment(params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for fmt in data.WRITERS:
        data.dataset_dir(fmt, params["kind"], params["n"])
    yield {}


class Coverage:
    """Checks every sample of the epoch arrived. Epochs may be padded to whole global batches
    (ours repeats a few samples so every rank gets full batches); throughput is counted in
    distinct samples, so padding costs the library that pads, never helps it."""

    def __init__(self, n: int, library: str) -> None:
        self.seen = np.zeros(n, np.bool_)
        self.count = 0
        self.library = library

    def add(self, labels: Any) -> None:
        labels = np.asarray(labels, np.int64).reshape(-1)
        self.seen[labels] = True
        self.count += len(labels)

    def check(self, slack: int = 0) -> None:
        n = len(self.seen)
        missing = n - int(self.seen.sum())
        if missing or not n <= self.count <= n + slack:
            raise AssertionError(
                f"{self.library} yielded {self.count} samples missing {missing} of {n}"
            )


def run(library: str, params: dict[str, Any]) -> dict[str, float]:
    lib = get(library)
    kind, n = params["kind"], params["n"]
    dataset = lib.open(data.dataset_dir(lib.format, kind, n), shuffle=params["shuffle"])
    coverage = Coverage(n, library)
    labels = [0] * (n + PADDING_SLACK)  # preallocated: appending would add to the measured time
    count = 0
    large = kind == "image"  # small samples have nothing to touch; skip the check
    with Clock() as clock:
        for sample in lib.iterate(dataset):
            if large:
                touch(sample)
            labels[count] = sample.get("label", count)
            count += 1
    coverage.add(labels[:count])
    coverage.check(slack=PADDING_SLACK)
    return {
        "samples_per_s": n / clock.seconds,
        "mb_per_s": data.payload_bytes(kind, n) / clock.seconds / 1e6,
    }
