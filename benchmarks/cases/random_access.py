"""Random access ``dataset[i]`` over uniformly random indices: samples/s.

The dataset's files are read once first (``measure.warm_page_cache``: every library starts
from the same warm page cache), and one access before the clock lets each library do its
one-time set-up (cache, index); the same seeded indices for every library. webdataset has no random access and shows '-'.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks import data
from benchmarks.cases.iterate import environment
from benchmarks.harness import CaseSpec, Metric
from benchmarks.libraries import READERS, get
from benchmarks.measure import Clock, touch, warm_page_cache

SPEC = CaseSpec(
    name="random_access",
    libraries=READERS,
    params=[
        {"kind": "tokens", "n": 200_000, "reads": 50_000},
        {"kind": "image", "n": 10_000, "reads": 5_000},
    ],
    quick_params=[{"kind": "tokens", "n": 20_000, "reads": 2_000}],
    metrics=[Metric("samples_per_s", "samples/s")],
)

__all__ = ["SPEC", "environment", "run"]


def run(library: str, params: dict[str, Any]) -> dict[str, float]:
    lib = get(library)
    kind, n = params["kind"], params["n"]
    warm_page_cache(data.dataset_dir(lib.format, kind, n))
    dataset = lib.open(data.dataset_dir(lib.format, kind, n))
    indices = np.random.default_rng(1).integers(0, n, params["reads"]).tolist()
    lib.getitem(dataset, 0)
    large = kind == "image"
    with Clock() as clock:
        for index in indices:
            sample = lib.getitem(dataset, index)
            if large:
                touch(sample)
    if int(sample["label"]) != indices[-1]:
        raise AssertionError(f"{library}: dataset[{indices[-1]}] has label {sample['label']}")
    return {"samples_per_s": params["reads"] / clock.seconds}
