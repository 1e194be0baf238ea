"""Conversion on distributed engines: ``dataframe_to_mds`` (Spark) and ``write_mds`` (Ray
Data). Each engine module is
imported only when its function is first used, so ``import streaming_lightning`` (and this
package) never imports pyspark or ray."""

from __future__ import annotations

from typing import Any

from streaming_lightning.convert.parts import ConversionResult, WriteSettings

_LAZY = {
    "dataframe_to_mds": "streaming_lightning.convert.spark",
    "infer_columns": "streaming_lightning.convert.spark",
    "write_mds": "streaming_lightning.convert.ray_data",
    "infer_arrow_columns": "streaming_lightning.convert.arrow_columns",
    "MDSDatasink": "streaming_lightning.convert.ray_data",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "ConversionResult",
    "MDSDatasink",
    "WriteSettings",
    "dataframe_to_mds",
    "infer_arrow_columns",
    "infer_columns",
    "write_mds",
]
