"""A small dataset in allenai/c4's exact raw layout (``en/c4-train.NNNNN-of-01024.json.gz``,
``en/c4-validation.NNNNN-of-00008.json.gz``: gzip, one ``{"text", "timestamp", "url"}``
object a line), for tests and demos — no download.

Documents are English-like and varied in length (one sentence to several paragraphs), with
the characters real web text has and byte-level code gets wrong: accents, curly quotes, dashes,
currency signs, CJK and emoji (multi-byte UTF-8), newlines and the odd tab.
"""

from __future__ import annotations

import gzip
import json
import os

import numpy as np

_WORD_LIST = (
    "the of and to in is for on that with as was at by from this be are it an or have has "
    "you your we our they more about new can will all one which their time when there its "
    "after people year would first also most other some these only than city world water "
    "school music game house market river garden recipe energy history system family season "
    "travel data model paper light mountain library window summer winter bridge story "
    "morning simple quickly carefully local public small large early modern ancient green "
    "bright"
)
#: Common English words sentences are drawn from.
WORDS = tuple(_WORD_LIST.split())
#: Words with non-ASCII characters (2-, 3- and 4-byte UTF-8).
SPECIAL = (
    "café",
    "naïve",
    "Zürich",
    "São Paulo",
    "résumé",
    "jalapeño",
    "€25",
    "£10",
    "—",
    "“quoted”",
    "it’s",
    "東京",
    "日本語",
    "Ελλάδα",
    "Москва",
    "🙂",
    "🚀",
    "½",
)
SITES = ("example", "news-daily", "recipes-hub", "travelblog", "wiki-notes", "shop")
TLDS = ("com", "org", "net", "co.uk", "de", "io")


def sentence(rng: np.random.Generator) -> str:
    words = [str(w) for w in rng.choice(WORDS, int(rng.integers(4, 18)))]
    for _ in range(int(rng.poisson(0.6))):
        words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(SPECIAL)))
    if rng.random() < 0.2:
        words.insert(int(rng.integers(0, len(words) + 1)), str(int(rng.integers(1, 3000))))
    text = " ".join(words)
    return text[0].upper() + text[1:] + str(rng.choice([".", ".", ".", "!", "?"]))


def document(rng: np.random.Generator) -> str:
    paragraphs = [
        " ".join(sentence(rng) for _ in range(int(rng.integers(1, 6))))
        for _ in range(int(rng.integers(1, 5)))
    ]
    separator = "\n\t" if rng.random() < 0.05 else "\n"
    return separator.join(paragraphs)


def record(rng: np.random.Generator) -> dict[str, str]:
    stamp = (
        f"2019-04-{int(rng.integers(18, 26)):02d}T{int(rng.integers(0, 24)):02d}:"
        f"{int(rng.integers(0, 60)):02d}:{int(rng.integers(0, 60)):02d}Z"
    )
    slug = "-".join(str(w) for w in rng.choice(WORDS, 3))
    url = f"https://{rng.choice(SITES)}.{rng.choice(TLDS)}/{slug}-{int(rng.integers(1, 10**6))}"
    return {"text": document(rng), "timestamp": stamp, "url": url}


def write_file(path: str, records: list[dict[str, str]]) -> None:
    """One C4 file: gzip (mtime 0, so same content → same bytes), a JSON object a line, with
    non-ASCII kept as UTF-8 as in the release."""
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as file:
        for item in records:
            file.write((json.dumps(item, ensure_ascii=False) + "\n").encode("utf-8"))


def write_raw(
    root: str, files: int = 3, docs_per_file: int = 50, seed: int = 0, validation_files: int = 1
) -> str:
    """Write ``root/en`` with ``files`` train files and ``validation_files`` validation files of
    ``docs_per_file`` documents each (the first files of the real release's names); returns
    that folder."""
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, "en")
    os.makedirs(folder, exist_ok=True)
    names = [f"c4-train.{i:05d}-of-01024.json.gz" for i in range(files)] + [
        f"c4-validation.{i:05d}-of-00008.json.gz" for i in range(validation_files)
    ]
    for name in names:
        write_file(os.path.join(folder, name), [record(rng) for _ in range(docs_per_file)])
    return folder
