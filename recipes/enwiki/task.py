"""EnWiki for ``train.py``: StreamingEnWiki sequences into a small GPT, next-token
cross-entropy (the model and loss every language recipe shares)."""

from __future__ import annotations

from recipes.common.gpt import ModelConfig, build_model, causal_lm_loss
from recipes.common.task import Task
from recipes.enwiki.dataset import StreamingEnWiki

TASK = Task(
    name="enwiki",
    dataset_class=StreamingEnWiki,
    model_config=ModelConfig,
    build_model=build_model,
    loss=causal_lm_loss,
    metric_names=("perplexity",),
    token_column="input_ids",
)
