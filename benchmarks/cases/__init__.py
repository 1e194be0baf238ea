"""One module per benchmark case; each exposes ``SPEC`` and ``run(library, params)``, and
optionally ``environment(params)`` (data and servers prepared once per parameter set)."""

CASES = [
    "iterate",
    "loader",
    "random_access",
    "first_batch",
    "resume",
    "write",
    "download",
    "throughput",
]
