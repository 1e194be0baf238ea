"""Optional dependencies: import one, or say which extra installs it.

Cloud SDKs and trainer frameworks are extras (``pip install 'streaming-lightning[s3]'``); the
code that needs one calls :func:`require_extra` so the error names the package and the pip
command instead of a bare ``ModuleNotFoundError``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from streaming_lightning.errors import MissingExtraError


def require_extra(module: str, extra: str, needed_for: str) -> ModuleType:
    """Import ``module`` or raise MissingExtraError saying ``needed_for`` needs ``extra``."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(
            f"{needed_for} needs the {module} package, which is not importable here "
            f"({error}). Install it with: pip install 'streaming-lightning[{extra}]'"
        ) from None
