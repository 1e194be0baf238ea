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
    "recipe_convert",
]
#: Cases that run in .venv (they need the spark/ray extras, which .venv-compat lacks):
#: ``make bench`` runs them with .venv's interpreter; ``python -m benchmarks`` runs them
#: only when named.
ENGINE_CASES = ["convert"]
