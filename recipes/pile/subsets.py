"""The Pile's 22 subsets and the folder name each is stored under.

A subset's ``pile_set_name`` ("Pile-CC", "Gutenberg (PG-19)", "Wikipedia (en)") is not a good
folder name — spaces and brackets in URLs and shell commands — so each is stored under a slug
(``pile-cc``, ``gutenberg-pg-19``, ``wikipedia-en``). Training configs may name subsets
either way.
"""

from __future__ import annotations

import re

#: The subsets of the released Pile (Gao et al., 2020), as spelt in ``meta.pile_set_name``.
PILE_SUBSETS = (
    "Pile-CC",
    "PubMed Central",
    "Books3",
    "OpenWebText2",
    "ArXiv",
    "Github",
    "FreeLaw",
    "StackExchange",
    "USPTO Backgrounds",
    "PubMed Abstracts",
    "Gutenberg (PG-19)",
    "OpenSubtitles",
    "Wikipedia (en)",
    "DM Mathematics",
    "Ubuntu IRC",
    "BookCorpus2",
    "EuroParl",
    "HackerNews",
    "YoutubeSubtitles",
    "PhilPapers",
    "NIH ExPorter",
    "Enron Emails",
)
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def slug(name: str) -> str:
    """The folder a subset is stored in: lower case, runs of other characters as one dash."""
    value = _NOT_ALNUM.sub("-", name.lower()).strip("-")
    return value or "unnamed"
