"""The Pile for ``train.py``: StreamingPile sequences (a mixture of subsets, or all of them)
into a small GPT, next-token cross-entropy (the model and loss every language recipe shares)."""

from __future__ import annotations

from recipes.common.gpt import ModelConfig, build_model, causal_lm_loss
from recipes.common.task import Task
from recipes.pile.dataset import StreamingPile

TASK = Task(
    name="pile",
    dataset_class=StreamingPile,
    model_config=ModelConfig,
    build_model=build_model,
    loss=causal_lm_loss,
    metric_names=("perplexity",),
    token_column="input_ids",
)
