"""Evaluation metrics over a whole split, the same under Lightning and Composer.

A recipe's loss function reports each metric for its batch either as a scalar tensor — the
split's value is then the mean over batches weighted by their samples — or as :class:`Summed`:
sums that add up over batches (and ranks) and turn into the metric at the end. Some metrics
are not means of their batches' values: a split's mIoU is the mean over classes of summed
intersections over summed unions, and its perplexity the exponential of the mean token loss;
averaging the per-batch values would give another number, which changes with the batch size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torchmetrics import Metric


@dataclass(frozen=True)
class Summed:
    """One batch's ``sums`` of a metric that a split computes from sums, and the module-level
    function ``value`` that turns sums — a batch's, or a whole split's — into the metric."""

    sums: torch.Tensor
    value: Callable[[torch.Tensor], torch.Tensor]


MetricValue = torch.Tensor | Summed


def batch_value(metric: MetricValue) -> torch.Tensor:
    """The metric over one batch (what training logs each step)."""
    return metric.value(metric.sums) if isinstance(metric, Summed) else metric


def ratio(sums: torch.Tensor) -> torch.Tensor:
    """``sums[0] / sums[1]``, 0 when nothing was counted (e.g. no labelled pixel)."""
    return sums[0] / sums[1] if float(sums[1]) > 0 else sums.new_zeros(())


class RecipeMetric(Metric):  # type: ignore[misc]
    """A recipe metric over an evaluation pass: the sample-weighted mean of per-batch scalars,
    or a :class:`Summed` metric's value of the summed sums. States sum across ranks (float64:
    pixel counts of a segmentation split pass float32's exact integers)."""

    full_state_update = False
    weighted: torch.Tensor
    weight: torch.Tensor
    sums: torch.Tensor

    def __init__(self, name: str) -> None:
        super().__init__()
        self.recipe_name = name  # survives the deepcopy Composer makes of every metric
        self.finish: Callable[[torch.Tensor], torch.Tensor] | None = None
        zero = torch.tensor(0.0, dtype=torch.float64)
        self.add_state("weighted", default=zero.clone(), dist_reduce_fx="sum")
        self.add_state("weight", default=zero.clone(), dist_reduce_fx="sum")
        self.add_state("sums", default=zero.clone(), dist_reduce_fx="sum")

    def update(self, value: MetricValue, weight: float) -> None:
        if isinstance(value, Summed):
            self.sums = self.sums + value.sums.detach().to(torch.float64)
            self.finish = value.value
        else:
            self.weighted += value.detach().to(torch.float64) * weight
            self.weight += weight

    def compute(self) -> torch.Tensor:
        if self.finish is not None:
            return self.finish(self.sums).float()
        return (self.weighted / self.weight).float()
