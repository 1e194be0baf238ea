"""Recipe metrics over a whole evaluation pass: sample-weighted means of per-batch scalars, and
metrics computed from sums (perplexity, mIoU) — the same under Lightning and Composer."""

from __future__ import annotations

import math

import torch

from recipes.common.gpt import causal_lm_loss, exp_mean
from recipes.common.metrics import RecipeMetric, Summed, batch_value, ratio


def test_scalars_average_by_samples() -> None:
    metric = RecipeMetric("accuracy")
    metric.update(torch.tensor(1.0), 16)
    metric.update(torch.tensor(0.0), 4)
    assert math.isclose(float(metric.compute()), 16 / 20, rel_tol=1e-6)
    metric.reset()
    metric.update(torch.tensor(0.5), 3)
    assert math.isclose(float(metric.compute()), 0.5, rel_tol=1e-6)


def test_perplexity_is_the_exponential_of_the_mean_token_loss_of_the_split() -> None:
    class Uniform(torch.nn.Module):
        """Logits favouring token 0 by ``bias``: a known loss per target token."""

        def __init__(self, bias: float) -> None:
            super().__init__()
            self.bias = bias

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            logits = torch.zeros(*ids.shape, 5)
            logits[..., 0] = self.bias
            return logits

    model = Uniform(2.0)
    metric = RecipeMetric("perplexity")
    losses, tokens = [], []
    for rows, length in ((1, 9), (3, 3)):  # 8 and 6 target tokens: unequal batches
        ids = torch.arange(rows * length).reshape(rows, length) % 5
        loss, metrics = causal_lm_loss(model, {"input_ids": ids})
        metric.update(metrics["perplexity"], rows)
        losses.append(float(loss) * rows * (length - 1))
        tokens.append(rows * (length - 1))
    expected = math.exp(sum(losses) / sum(tokens))
    assert math.isclose(float(metric.compute()), expected, rel_tol=1e-5)
    assert float(exp_mean(torch.zeros(2))) == 1.0  # no token: perplexity 1, not a NaN


def test_summed_metrics_give_their_batch_value_and_guard_empty_counts() -> None:
    value = Summed(torch.tensor([3.0, 4.0]), ratio)
    assert float(batch_value(value)) == 0.75
    assert float(ratio(torch.tensor([0.0, 0.0]))) == 0.0
    assert float(batch_value(torch.tensor(0.25))) == 0.25
