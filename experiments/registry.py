"""Which experiments exist, in which order, and which virtualenv runs each.

``main`` is ``.venv`` (torch 2.13 CPU + Lightning); ``compat`` is ``.venv-compat`` (torch 2.7 +
the peers: mosaicml-streaming, litdata, webdataset), the only place the peers can be imported.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, Protocol, cast

Venv = Literal["main", "compat"]


class ExperimentModule(Protocol):
    def run(self, quick: bool, work: Path) -> dict[str, Any]: ...

    def plot(self, results: dict[str, Any], png: Path) -> None: ...

    def summary(self, results: dict[str, Any]) -> str: ...

    def headline(self, results: dict[str, Any]) -> str: ...


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    venv: Venv

    @property
    def module(self) -> ExperimentModule:
        loaded: ModuleType = importlib.import_module(f"experiments.{self.name}")
        return cast(ExperimentModule, loaded)


EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in (
        Experiment(
            "determinism", "Elastic determinism: the same loss curve on 1, 2, 4, 8 ranks", "main"
        ),
        Experiment(
            "convergence", "Equal convergence: shuffles against full random shuffling", "compat"
        ),
        Experiment("throughput", "ImageNet-style training throughput", "compat"),
        Experiment("resume", "Resume latency against epoch position", "compat"),
    )
}
