"""C4 for ``train.py``: StreamingC4 sequences into a small GPT, next-token cross-entropy."""

from __future__ import annotations

from recipes.c4.dataset import StreamingC4
from recipes.common.gpt import ModelConfig, build_model, causal_lm_loss
from recipes.common.task import Task

TASK = Task(
    name="c4",
    dataset_class=StreamingC4,
    model_config=ModelConfig,
    build_model=build_model,
    loss=causal_lm_loss,
    metric_names=("perplexity",),
    token_column="input_ids",
)
