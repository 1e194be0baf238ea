"""The language recipes' datasets (C4, EnWiki, the Pile): MDS samples as
``{"input_ids": int64 tensor [seq_len]}`` for a causal LM.

Labels are not stored or returned: they are ``input_ids`` shifted by one, computed in the loss.

Reads either kind the converter writes:

- **tokens** datasets (``--mode tokens``, the way to train): each sample is one packed
  sequence, returned as it is (widened to int64). ``seq_len``, if given, must equal the
  converted length — a mismatch is a configuration mistake, reported before training starts.
- **text** datasets (``--mode text``, for trying tokenizers without reconverting): each
  document is tokenised on the fly with ``tokenizer``, EOS appended, then **truncated** to
  ``seq_len`` tokens (the rest of a long document is not used) or **padded** with EOS up to
  it. Such samples also carry ``loss_mask`` (bool [seq_len], False on padding) so the loss
  ignores the padding. Documents are not packed together: a sample must depend on its index
  alone for shuffling and exact resume, and per-document samples keep that simple and
  correct; convert with ``--mode tokens`` for packed, padding-free training.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np
import torch

from recipes.common.tokenizer import BUILTIN, TOKENIZER_BASENAME, Tokenizer, load
from streaming_lightning import StreamingDataset
from streaming_lightning.errors import ConfigError
from streaming_lightning.storage.transfer import download_file
from streaming_lightning.storage.uploader import join_url

#: seq_len of text datasets when none is given (the converter's default too).
DEFAULT_SEQ_LEN = 2048


def stored_length(encoding: str, where: str, recipe: str) -> int:
    """The sequence length of a ``tokens`` column (``ndarray:uint16:2048`` → 2048)."""
    parts = encoding.split(":")
    if len(parts) != 3 or parts[0] != "ndarray" or not parts[2].isdigit():
        raise ConfigError(
            f"{where}: column tokens is {encoding!r}, not fixed-length sequences; convert it "
            f"with python -m recipes.{recipe} convert --mode tokens."
        )
    return int(parts[2])


class StreamingLanguageDataset(StreamingDataset):
    """A text corpus from MDS shards (``tokens`` or ``text`` columns) as language-model samples.

    Takes StreamingDataset's arguments plus ``seq_len`` (tokens per sample) and ``tokenizer``
    (text datasets only: ``byte``, ``bpe`` — the tokenizer.json saved next to the dataset by
    the converter — or the path of a tokenizer.json). Each recipe subclasses it to name
    itself in errors.
    """

    #: The recipe package whose converter writes this dataset (``python -m recipes.<recipe>``).
    recipe = "c4"
    #: The corpus' name in messages.
    corpus = "text"

    def __init__(self, *, seq_len: int | None = None, tokenizer: str = "byte", **kwargs: Any):
        super().__init__(**kwargs)
        stream = self.streams[0]
        columns = stream.columns() or {}
        if seq_len is not None and int(seq_len) < 2:
            raise ConfigError(f"seq_len must be >= 2, got {seq_len}.")
        if "tokens" in columns:
            self.mode = "tokens"
            self.seq_len = stored_length(columns["tokens"], stream.describe(), self.recipe)
            if seq_len is not None and int(seq_len) != self.seq_len:
                raise ConfigError(
                    f"{stream.describe()} holds sequences of {self.seq_len} tokens, but seq_len "
                    f"is {seq_len}: set model.seq_len={self.seq_len}, or reconvert with "
                    f"--seq-len {seq_len}."
                )
            self.tokenizer_file = None
        elif "text" in columns:
            self.mode = "text"
            self.seq_len = int(seq_len or DEFAULT_SEQ_LEN)
            self.tokenizer_file = self._tokenizer_file(tokenizer)
        else:
            raise ConfigError(
                f"{stream.describe()} is not a {self.corpus} dataset (columns {sorted(columns)}); "
                f"convert it with python -m recipes.{self.recipe} convert."
            )

    def _tokenizer_file(self, tokenizer: str) -> str:
        """``byte``, or a local tokenizer.json; ``bpe`` is the dataset's own (fetched from the
        remote into the cache, once per node). Streams of a mixture share the first one's."""
        if tokenizer not in BUILTIN:
            return tokenizer
        if tokenizer == "byte":
            return "byte"
        stream = self.streams[0]
        path = os.path.join(stream.local, TOKENIZER_BASENAME)
        if stream.remote is not None:
            download_file(join_url(stream.remote, TOKENIZER_BASENAME), path)
        if not os.path.exists(path):
            raise ConfigError(
                f"tokenizer: bpe needs {path}, which the converter writes with --tokenizer bpe; "
                "this dataset has none (use tokenizer: byte, or a tokenizer.json path)."
            )
        return path

    @functools.cached_property
    def tokenizer(self) -> Tokenizer | None:
        """Loaded on first use, in each worker process."""
        return None if self.tokenizer_file is None else load(self.tokenizer_file)

    def get_item(self, index: int) -> dict[str, torch.Tensor]:
        sample = super().get_item(index)
        if self.mode == "tokens":
            return {"input_ids": torch.from_numpy(np.asarray(sample["tokens"], np.int64))}
        return self.tokenize(sample["text"])

    def tokenize(self, text: str) -> dict[str, torch.Tensor]:
        """One document as a sample: its tokens and EOS, truncated or EOS-padded to seq_len."""
        tokenizer = self.tokenizer
        assert tokenizer is not None
        ids = np.full(self.seq_len, tokenizer.eos_id, np.int64)
        tokens = tokenizer.encode(text)[: self.seq_len]
        ids[: len(tokens)] = tokens
        mask = np.zeros(self.seq_len, bool)
        mask[: len(tokens) + 1] = True  # the document's tokens and the EOS that ends it
        return {"input_ids": torch.from_numpy(ids), "loss_mask": torch.from_numpy(mask)}
