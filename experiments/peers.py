"""What the experiments that race the peer libraries share: their names in figures and tables,
the benchmark harness's rows turned into per-library results, and the data build timed.

The measuring itself is the benchmark harness's (``benchmarks.harness.run_case``: a fresh
subprocess per run, libraries alternating order, the median of the runs), so an experiment and
``make bench`` time a library the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from benchmarks.harness import OURS

NAMES = {
    OURS: "streaming-lightning (ours)",
    "mosaicml-streaming": "mosaicml-streaming",
    "litdata": "litdata",
    "webdataset": "webdataset",
    "imagefolder": "ImageFolder-style files",
}
OURS_COLOR = "tab:blue"
PEER_COLORS = {
    "mosaicml-streaming": "tab:orange",
    "litdata": "tab:green",
    "webdataset": "tab:red",
    "imagefolder": "tab:gray",
}

Environment = Callable[[dict[str, Any]], AbstractContextManager[dict[str, Any]]]


def name(library: str) -> str:
    return NAMES.get(library, library)


def color(library: str) -> str:
    return OURS_COLOR if library == OURS else PEER_COLORS.get(library, "tab:purple")


def per_library(row: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One harness row (one metric of one parameter set) as ``{library: {runs, median}}``."""
    return {
        library: {"runs": row["runs"][library], "median": median}
        for library, median in row["median"].items()
    }


def timed(environment: Environment, seconds: list[float]) -> Environment:
    """``environment`` (which builds the datasets) with the time each entry took appended to
    ``seconds``: the build is part of an experiment's cost unless the data was cached."""

    @contextmanager
    def wrapped(params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        started = time.perf_counter()
        with environment(params) as extra:
            seconds.append(round(time.perf_counter() - started, 1))
            yield extra

    return wrapped


def times(value: float) -> str:
    """A ratio as the tables print it: ``1.23x``."""
    return f"{value:.2f}x"


def median_of(repeats: int) -> str:
    return f"median of {repeats} runs" if repeats > 1 else "1 run"
