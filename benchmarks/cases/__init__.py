"""One module per benchmark case; each exposes ``SPEC`` and ``run(library, params)``."""

CASES = ["write", "download"]
