"""One epoch through a DataLoader (2 workers, batch 256): samples/s and memory.

The clock covers creating the loader, starting its workers and every batch. Memory: peak RSS
of the main process and of the largest worker, and the peak growth of /dev/shm during the
epoch (shared memory the library and the loader's tensor passing use).
"""

from __future__ import annotations

from typing import Any

from benchmarks import data
from benchmarks.cases.iterate import PADDING_SLACK, Coverage, environment
from benchmarks.harness import CaseSpec, Metric
from benchmarks.libraries import READERS, get
from benchmarks.measure import Clock, PeakMemory, touch

SPEC = CaseSpec(
    name="loader",
    libraries=READERS,
    params=[
        {"kind": "tokens", "n": 200_000, "workers": 2, "batch": 256},
        {"kind": "image", "n": 10_000, "workers": 2, "batch": 256},
    ],
    quick_params=[{"kind": "tokens", "n": 20_000, "workers": 2, "batch": 256}],
    timeout=120,  # the slowest healthy run takes ~40 s
    metrics=[
        Metric("samples_per_s", "samples/s"),
        Metric("main_rss_mb", "MB", higher_is_better=False),
        Metric("worker_rss_mb", "MB", higher_is_better=False),
        Metric("shm_mb", "MB", higher_is_better=False),
    ],
)

__all__ = ["SPEC", "environment", "run"]


def run(library: str, params: dict[str, Any]) -> dict[str, float]:
    lib = get(library)
    kind, n = params["kind"], params["n"]
    dataset = lib.open(data.dataset_dir(lib.format, kind, n), batch_size=params["batch"])
    coverage = Coverage(n, library)
    with PeakMemory() as memory, Clock() as clock:
        loader = lib.loader(dataset, batch_size=params["batch"], num_workers=params["workers"])
        for batch in loader:
            touch(batch)
            coverage.add(batch["label"])
        del loader
    coverage.check(slack=PADDING_SLACK)
    return {
        "samples_per_s": n / clock.seconds,
        "main_rss_mb": memory.main_rss / 1e6,
        "worker_rss_mb": memory.child_rss / 1e6,
        "shm_mb": memory.shm_peak / 1e6,
    }
