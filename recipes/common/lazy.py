"""Lazy package attributes (PEP 562): a recipe package names its dataset class without
importing it, so ``import recipes.<name>.convert`` — in the converter and in each of its
spawned worker processes — never imports torch, which the dataset classes need and the
converters do not (about a second per process)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_attributes(package: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports ``names[attr]`` (a module) on
    first access to ``attr`` and caches the value in the package."""

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(names[name]), name)
        setattr(importlib.import_module(package), name, value)
        return value

    return __getattr__
