"""``convert <recipe> [args...]``: one entry point for every recipe's converter, the same as
``python -m recipes.<recipe> convert [args...]``.

Recipes sit above the library (they import it), so they are found and imported only when this
command runs — ``import streaming_lightning`` never imports a recipe, and a recipe's optional
dependencies (pyarrow, PyAV, tokenizers) are needed only by the recipe that uses them.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys

from streaming_lightning.cli._common import Commands
from streaming_lightning.errors import ConfigError

#: The package whose sub-packages are recipes.
RECIPES_PACKAGE = "recipes"


def available_recipes() -> list[str]:
    """Names of the recipe packages that can be run (those with a ``__main__`` module),
    found on disk without importing any of them."""
    spec = importlib.util.find_spec(RECIPES_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return []
    names = set()
    for location in spec.submodule_search_locations:
        try:
            entries = os.listdir(location)
        except OSError:
            continue
        for name in entries:
            if name.isidentifier() and os.path.isfile(os.path.join(location, name, "__main__.py")):
                names.add(name)
    return sorted(names)


def run_recipe(recipe: str, args: list[str]) -> int:
    """Run ``recipes.<recipe>``'s ``main(["convert", *args])``; its exit code."""
    names = available_recipes()
    if recipe not in names:
        listing = ", ".join(names) if names else f"none (no {RECIPES_PACKAGE!r} package found)"
        raise ConfigError(f"Unknown recipe {recipe!r}. Available recipes: {listing}.")
    module = importlib.import_module(f"{RECIPES_PACKAGE}.{recipe}.__main__")
    return int(module.main(["convert", *args]) or 0)


def register(commands: Commands) -> None:
    parser = commands.add_parser(
        "convert",
        help="convert a raw dataset to MDS with a recipe's converter",
        description="Run a recipe's converter, exactly as `python -m recipes.RECIPE convert "
        "ARGS...`. Every argument after RECIPE goes to the recipe: "
        "`streaming-lightning convert cifar10 --help` shows its options. "
        f"Recipes: {', '.join(available_recipes()) or 'none installed'}.",
    )
    parser.add_argument("recipe", nargs="?", help="recipe name, e.g. cifar10")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the recipe")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.recipe is None:
        names = ", ".join(available_recipes()) or "none"
        print(f"error: name a recipe to run. Available recipes: {names}.", file=sys.stderr)
        return 2
    return run_recipe(args.recipe, list(args.args))
