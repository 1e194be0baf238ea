"""The language recipes' tokenizers (C4, EnWiki, Pile) — all offline, so conversion and
training never need a network.

- ``byte``: UTF-8 bytes as ids 0-255, and EOS = 256 (vocabulary 257). Nothing to train or
  store; lossless for any text. The default, and what the tests and the demo use.
- ``bpe``: a byte-level BPE (HuggingFace ``tokenizers``, GPT-2's scheme: byte symbols, so no
  text is ever unknown) trained by the converter on the first documents of the train split, and
  saved as ``tokenizer.json`` next to the converted dataset — training and evaluation load
  that file, so they tokenise exactly as the converter did.
- a path to a ``tokenizer.json``: any HuggingFace ``tokenizers`` file; its end-of-text token is
  found by name (:data:`EOS_NAMES`).

``tokenizers`` is imported only for ``bpe`` and paths: the byte tokenizer works without it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from streaming_lightning.errors import ConfigError, MissingExtraError

#: The end-of-text token of the BPE tokenizers the converters train (GPT-2's name).
EOS_TOKEN = "<|endoftext|>"
#: End-of-text tokens looked for, in order, in a user-supplied tokenizer.json.
EOS_NAMES = (EOS_TOKEN, "</s>", "<eos>", "<|eos|>", "[EOS]", "<|end_of_text|>")
#: Name of the tokenizer file saved next to a converted dataset.
TOKENIZER_BASENAME = "tokenizer.json"
#: Tokenizer names; anything else is a path to a tokenizer.json.
BUILTIN = ("byte", "bpe")
#: Smallest BPE vocabulary: the 256 byte symbols and EOS.
MIN_BPE_VOCAB = 257


class Tokenizer:
    """Text ⇄ token ids, with the EOS id that separates packed documents."""

    #: Ids are 0 <= id < vocab_size (the model's embedding rows).
    vocab_size: int
    eos_id: int

    def encode(self, text: str) -> np.ndarray:
        """The ids of ``text`` (no EOS), as a 1-D integer array."""
        raise NotImplementedError

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        """:meth:`encode` of each text; subclasses batch it where that is faster."""
        return [self.encode(text) for text in texts]

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids``, EOS dropped."""
        raise NotImplementedError


class ByteTokenizer(Tokenizer):
    """UTF-8 bytes; EOS is 256."""

    vocab_size = 257
    eos_id = 256

    def encode(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), np.uint8)

    def decode(self, ids: Iterable[int]) -> str:
        data = bytes(i for i in (int(i) for i in ids) if i < 256)
        return data.decode("utf-8", errors="replace")


class HFTokenizer(Tokenizer):
    """A HuggingFace ``tokenizers`` tokenizer (e.g. the recipe's byte-level BPE)."""

    def __init__(self, tokenizer: Any, source: str) -> None:
        self.tokenizer = tokenizer
        self.source = source
        # The largest id + 1, not the token count: a user's vocabulary may have gaps.
        self.vocab_size = max(tokenizer.get_vocab(with_added_tokens=True).values(), default=0) + 1
        found = (tokenizer.token_to_id(name) for name in EOS_NAMES)
        eos = next((i for i in found if i is not None), None)
        if eos is None:
            raise ConfigError(
                f"{source}: no end-of-text token (looked for {', '.join(EOS_NAMES)}); add one "
                "as a special token, or use --tokenizer bpe to train one."
            )
        self.eos_id = int(eos)

    def encode(self, text: str) -> np.ndarray:
        return np.asarray(self.tokenizer.encode(text, add_special_tokens=False).ids, np.int64)

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [np.asarray(encoding.ids, np.int64) for encoding in encodings]

    def decode(self, ids: Iterable[int]) -> str:
        return str(self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=True))

    def save(self, path: str) -> None:
        self.tokenizer.save(path)

    def to_str(self) -> str:
        return str(self.tokenizer.to_str())


def _tokenizers() -> Any:
    try:
        import tokenizers
    except ImportError:
        raise MissingExtraError(
            "BPE tokenizers need the tokenizers package: pip install 'streaming-lightning[recipes]' "
            "(or use --tokenizer byte)."
        ) from None
    return tokenizers


def load_file(path: str) -> HFTokenizer:
    """A tokenizer.json, checked: it must exist, parse and have an end-of-text token."""
    if not os.path.isfile(path):
        raise ConfigError(
            f"No tokenizer file {path}: pass --tokenizer byte, bpe, or the path of a tokenizer.json."
        )
    tokenizers = _tokenizers()
    try:
        tokenizer = tokenizers.Tokenizer.from_file(path)
    except Exception as err:  # the Rust side raises a bare Exception for any parse failure
        raise ConfigError(f"{path}: not a HuggingFace tokenizer.json ({err}).") from None
    return HFTokenizer(tokenizer, path)


def load(spec: str) -> Tokenizer:
    """``byte``, or the local path of a tokenizer.json (``bpe`` is resolved to its file by the
    caller, which knows where the dataset is). Files are cached by path and modification time:
    a conversion worker loads its tokenizer once, not once per input file."""
    if spec == "byte":
        return ByteTokenizer()
    if spec == "bpe":
        raise ConfigError(
            "The bpe tokenizer is the tokenizer.json saved next to a converted dataset: pass its "
            "path (or convert with --tokenizer bpe, which trains and saves it)."
        )
    try:
        stat = os.stat(spec)
    except OSError:
        return load_file(spec)  # raises, naming the path
    return _cached_file(spec, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _cached_file(path: str, mtime_ns: int, size: int) -> HFTokenizer:
    return load_file(path)


def train_bpe(texts: Iterable[str], vocab_size: int) -> HFTokenizer:
    """A byte-level BPE with ``vocab_size`` ids (at most: a small corpus yields fewer) and
    EOS = :data:`EOS_TOKEN`, trained on ``texts`` (streamed, never held in memory at once)."""
    if vocab_size < MIN_BPE_VOCAB:
        raise ConfigError(
            f"--vocab-size must be >= {MIN_BPE_VOCAB} (the 256 byte symbols and EOS), "
            f"got {vocab_size}."
        )
    tokenizers = _tokenizers()
    byte_level = tokenizers.pre_tokenizers.ByteLevel
    tokenizer = tokenizers.Tokenizer(tokenizers.models.BPE())
    tokenizer.pre_tokenizer = byte_level(add_prefix_space=False)  # lossless: no added spaces
    tokenizer.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS_TOKEN],
        initial_alphabet=byte_level.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return HFTokenizer(tokenizer, "trained BPE")


def token_dtype(vocab_size: int) -> str:
    """The narrowest stored id type: uint16 holds vocabularies up to 65,536 ids."""
    return "uint16" if vocab_size <= 1 << 16 else "uint32"
