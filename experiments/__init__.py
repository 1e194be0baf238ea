"""Reproducible evidence for the README's headline claims: ``make experiments``.

Each experiment is a module with ``run(quick, work) -> results``, ``plot(results, png)``,
``summary(results) -> markdown`` and ``headline(results) -> sentence``; ``experiments.runner``
runs them (each in the virtualenv that has its libraries), stores the results as JSON next to
the figure, and writes ``docs/experiments.md`` and the README's experiments block from those
files alone, so every number shown comes from a run.
"""
