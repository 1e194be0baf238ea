"""A small GPT-style decoder: token and learned position embeddings, pre-LayerNorm blocks of
causal self-attention (``scaled_dot_product_attention``, which picks the fastest kernel the
device has) and an MLP, a final LayerNorm and an output head tied to the token embedding.

Sized for CPU demos by default (d_model 64, 2 layers, 2 heads, 128 tokens: ~120k parameters
with the byte vocabulary); the same code scales to GPT-2 sizes through the config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from recipes.common.metrics import MetricValue, Summed
from streaming_lightning.errors import ConfigError


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.dropout = dropout
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, 4 * d_model),
            nn.GELU(),
            nn.Linear(4 * d_model, d_model),
            nn.Dropout(dropout),
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        heads = self.qkv(self.ln1(x)).view(batch, length, 3, self.n_heads, -1)
        q, k, v = heads.permute(2, 0, 3, 1, 4)  # each batch × heads × length × head width
        attended = functional.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True
        )
        x = x + self.drop(self.proj(attended.transpose(1, 2).reshape(batch, length, width)))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(
        self,
        vocab_size: int = 257,
        d_model: int = 64,
        n_layers: int = 2,
        n_heads: int = 2,
        seq_len: int = 128,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ConfigError(
                f"model.d_model ({d_model}) must be a multiple of model.n_heads ({n_heads})."
            )
        for name, value in (
            ("vocab_size", vocab_size),
            ("n_layers", n_layers),
            ("seq_len", seq_len),
        ):
            if value < 1:
                raise ConfigError(f"model.{name} must be >= 1, got {value}.")
        self.vocab_size = vocab_size
        self.seq_len = seq_len
        self.token_embedding = nn.Embedding(vocab_size, d_model)
        self.position_embedding = nn.Embedding(seq_len, d_model)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d_model, n_heads, dropout) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.head.weight = self.token_embedding.weight  # tied: fewer parameters, better small LMs
        self.apply(_init)
        self._checked = False

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Logits (batch × length × vocab) of the next token at every position."""
        length = input_ids.shape[1]
        if length > self.seq_len:
            raise ConfigError(
                f"Sequences of {length} tokens are longer than model.seq_len={self.seq_len}."
            )
        if not self._checked:  # once: an id past the vocabulary is a config mistake
            largest = int(input_ids.max())
            if largest >= self.vocab_size:
                raise ConfigError(
                    f"Token id {largest} is outside model.vocab_size={self.vocab_size}: set "
                    "model.vocab_size to the tokenizer's (convert prints it as vocab_size)."
                )
            self._checked = True
        positions = torch.arange(length, device=input_ids.device)
        x = self.drop(self.token_embedding(input_ids) + self.position_embedding(positions))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


def _init(module: nn.Module) -> None:
    """GPT-2's initialisation: small normal weights, zero biases."""
    if isinstance(module, nn.Linear | nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


@dataclass
class ModelConfig:
    #: Token ids the model knows: 257 for the byte tokenizer; for bpe or a tokenizer.json, the
    #: vocab_size the converter prints.
    vocab_size: int = 257
    #: Width of the embeddings and of every block.
    d_model: int = 64
    #: Transformer blocks.
    n_layers: int = 2
    #: Attention heads per block (d_model must be a multiple).
    n_heads: int = 2
    #: Longest input (position embeddings); equals the dataset's sequence length.
    seq_len: int = 128
    #: Dropout on embeddings, attention and MLP outputs (0: none, usual for pretraining).
    dropout: float = 0.0


def build_model(config: Any) -> nn.Module:
    return GPT(
        vocab_size=int(config.vocab_size),
        d_model=int(config.d_model),
        n_layers=int(config.n_layers),
        n_heads=int(config.n_heads),
        seq_len=int(config.seq_len),
        dropout=float(config.dropout),
    )


def exp_mean(sums: torch.Tensor) -> torch.Tensor:
    """Perplexity from (summed token losses, tokens)."""
    return torch.exp(sums[0] / sums[1]) if float(sums[1]) > 0 else sums.new_ones(())


def causal_lm_loss(model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, MetricValue]]:
    """Mean cross-entropy of predicting token t+1 from tokens 0..t, over the positions whose
    target is real text (``loss_mask``, present for padded text-mode samples). Perplexity is
    the exponential of the mean token loss over all the tokens of a split, not the mean of its
    batches' perplexities."""
    input_ids = batch["input_ids"]
    logits = model(input_ids[:, :-1])
    targets = input_ids[:, 1:]
    mask = batch.get("loss_mask")
    if mask is not None:
        targets = targets.masked_fill(~mask[:, 1:], -100)  # cross_entropy's ignore_index
    value = functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    tokens = (targets != -100).sum().to(value.dtype)
    perplexity = Summed(torch.stack([value.detach() * tokens, tokens]), exp_mean)
    return value, {"perplexity": perplexity}
