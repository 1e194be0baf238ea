"""Resume latency: build the dataset, restore a position 10/50/90% into a shuffled epoch and
take the first sample — the time a restarted job waits before training continues.

Each library resumes the way its users do: ours and mosaicml-streaming from a state dict,
litdata from the state its StreamingDataLoader would hand the dataset, webdataset (which keeps
no position) by skipping the consumed samples. After the clock, the run checks the resumed
iterator yields exactly the samples left in the epoch; with ``"count_remaining": False`` (epochs
of millions, where a peer would take many minutes to iterate the rest) it checks only that the
next batch's samples are distinct samples of the dataset.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from benchmarks import data
from benchmarks.cases.iterate import PADDING_SLACK, environment
from benchmarks.harness import CaseSpec, Metric
from benchmarks.libraries import READERS, get
from benchmarks.measure import Clock

SPEC = CaseSpec(
    name="resume",
    libraries=READERS,
    params=[
        {"kind": "tokens", "n": 200_000, "at": 0.1},
        {"kind": "tokens", "n": 200_000, "at": 0.5},
        {"kind": "tokens", "n": 200_000, "at": 0.9},
    ],
    quick_params=[{"kind": "tokens", "n": 20_000, "at": 0.5}],
    metrics=[Metric("seconds", "s", higher_is_better=False)],
)

__all__ = ["SPEC", "environment", "run"]
BATCH = 256


def pulled(iterator: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The rest of ``iterator`` by ``next`` alone. litdata's dataset is its own iterator, and
    ``iter()`` on it (which ``for``, ``sum`` and ``islice`` call) starts the resumed epoch over:
    the sample already taken would come again."""
    while True:
        try:
            yield next(iterator)
        except StopIteration:
            return


def run(library: str, params: dict[str, Any]) -> dict[str, float]:
    lib = get(library)
    lib.preload()
    n = params["n"]
    consumed = int(n * params["at"]) // BATCH * BATCH
    path = data.dataset_dir(lib.format, params["kind"], n)
    with Clock() as clock:
        dataset = lib.open(path, shuffle=True, batch_size=BATCH)
        iterator = lib.resume(dataset, consumed, batch_size=BATCH)
        first = next(iterator)
    rest = pulled(iterator)
    if not params.get("count_remaining", True):
        labels = {
            int(first["label"]),
            *(int(s["label"]) for s in itertools.islice(rest, BATCH - 1)),
        }
        if len(labels) != BATCH or not all(0 <= label < n for label in labels):
            raise AssertionError(f"{library} resumed into a batch with repeated or unknown samples")
        return {"seconds": clock.seconds}
    remaining = 1 + sum(1 for _ in rest)
    # Ours pads the epoch to whole global batches (see iterate.Coverage): allow that slack.
    if not n - consumed <= remaining <= n - consumed + PADDING_SLACK:
        raise AssertionError(f"{library} resumed with {remaining} samples left, not {n - consumed}")
    return {"seconds": clock.seconds}
