"""StreamingEnWiki: EnWiki MDS samples (``--mode tokens`` sequences, or articles tokenised on
the fly; also mosaicml-streaming's ``text`` datasets) as ``{"input_ids": int64 [seq_len]}``
for a causal LM — see :mod:`recipes.common.language` for the two modes."""

from __future__ import annotations

from recipes.common.language import StreamingLanguageDataset


class StreamingEnWiki(StreamingLanguageDataset):
    """English Wikipedia from MDS shards; takes StreamingDataset's arguments plus ``seq_len``
    and ``tokenizer`` (text datasets only)."""

    recipe = "enwiki"
    corpus = "EnWiki"
