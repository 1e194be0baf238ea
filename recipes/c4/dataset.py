"""StreamingC4: C4 MDS samples (``--mode tokens`` sequences, or documents tokenised on the fly)
as ``{"input_ids": int64 tensor [seq_len]}`` for a causal LM — see
:mod:`recipes.common.language` for the two modes."""

from __future__ import annotations

from recipes.common.language import StreamingLanguageDataset


class StreamingC4(StreamingLanguageDataset):
    """C4 from MDS shards; takes StreamingDataset's arguments plus ``seq_len`` and
    ``tokenizer`` (text datasets only)."""

    recipe = "c4"
    corpus = "C4"
