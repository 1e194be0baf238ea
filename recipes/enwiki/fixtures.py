"""A small dataset in the EnWiki text dump's exact raw layout (``part-NNNNN-of-00500`` train
files and ``eval.txt``: UTF-8, one article a line), for tests and demos — no download.

Like the real files, lines are long single-line articles with non-ASCII text (accents, CJK,
emoji), some surrounded by spaces or ended by CRLF, with blank lines in between that converters must skip.
"""

from __future__ import annotations

import os

import numpy as np

from recipes.c4.fixtures import sentence

#: The dump's part count, as in its file names.
DUMP_PARTS = 500


def article(rng: np.random.Generator) -> str:
    title = sentence(rng).rstrip(".!?")
    body = " ".join(sentence(rng) for _ in range(int(rng.integers(1, 12))))
    return f"{title}. {body}"


def write_lines(path: str, rng: np.random.Generator, articles: int) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as file:
        for _ in range(articles):
            pad = " " if rng.random() < 0.1 else ""
            end = "\r\n" if rng.random() < 0.1 else "\n"  # a file edited on Windows
            file.write(f"{pad}{article(rng)}{pad}{end}")
            if rng.random() < 0.3:
                file.write("\n" if rng.random() < 0.5 else "   \n")


def write_raw(root: str, parts: int = 3, articles_per_part: int = 40, seed: int = 0) -> str:
    """Write the first ``parts`` train parts and eval.txt into ``root``; returns ``root``."""
    rng = np.random.default_rng(seed)
    os.makedirs(root, exist_ok=True)
    for index in range(parts):
        write_lines(
            os.path.join(root, f"part-{index:05d}-of-{DUMP_PARTS:05d}"), rng, articles_per_part
        )
    write_lines(os.path.join(root, "eval.txt"), rng, articles_per_part)
    return root
