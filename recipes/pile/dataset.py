"""StreamingPile: Pile MDS samples as ``{"input_ids": int64 [seq_len]}`` for a causal LM, from
the whole split or from chosen subsets mixed in chosen proportions.

The converter writes each subset as its own dataset (``<split>/<subset>/``), so a mixture is
a list of streams, one per subset — ``subsets={"Pile-CC": 0.5, "ArXiv": 0.3, "Github": 0.2}``
(each subset's share of every epoch, see ``Stream(proportion=)``), or a list of names to take
those subsets at their natural sizes. Without ``subsets`` the split's own index streams every
subset. Either way the shards are cached in the same place, so switching mixtures never
downloads a shard twice. See :mod:`recipes.common.language` for ``tokens``/``text`` datasets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from recipes.common.language import StreamingLanguageDataset
from recipes.pile.subsets import slug
from streaming_lightning import Stream
from streaming_lightning.errors import ConfigError


def subset_streams(
    subsets: Mapping[str, float] | Sequence[str],
    remote: str | None,
    local: str | None,
    split: str | None,
) -> list[Stream]:
    """One stream per subset (by Pile name or folder name), with its proportion if given."""
    if not subsets:
        raise ConfigError("subsets is empty: name at least one Pile subset, or leave it unset.")
    if isinstance(subsets, str):
        subsets = [subsets]
    shares: dict[str, float | None] = (
        {str(name): float(share) for name, share in subsets.items()}
        if isinstance(subsets, Mapping)
        else dict.fromkeys(map(str, subsets))
    )
    folders = [slug(name) for name in shares]
    if len(set(folders)) != len(folders):
        raise ConfigError(f"subsets names one subset twice: {list(shares)}.")
    return [
        Stream(
            remote=remote,
            local=local,
            split=f"{split}/{folder}" if split else folder,
            proportion=share,
        )
        for folder, share in zip(folders, shares.values(), strict=True)
    ]


class StreamingPile(StreamingLanguageDataset):
    """The Pile from MDS shards; takes StreamingDataset's arguments plus ``seq_len``,
    ``tokenizer`` (text datasets only) and ``subsets`` ({name: proportion} or [names])."""

    recipe = "pile"
    corpus = "Pile"

    def __init__(
        self, *, subsets: Mapping[str, float] | Sequence[str] | None = None, **kwargs: Any
    ) -> None:
        if subsets is not None:
            if kwargs.get("streams"):
                raise ConfigError("Give subsets= or streams=, not both.")
            kwargs["streams"] = subset_streams(
                subsets,
                kwargs.pop("remote", None),
                kwargs.pop("local", None),
                kwargs.pop("split", None),
            )
        self.subsets = subsets
        super().__init__(**kwargs)
