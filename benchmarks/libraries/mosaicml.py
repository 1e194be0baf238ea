from __future__ import annotations

from typing import Any

from benchmarks.libraries.base import MosaicStyle


class MosaicML(MosaicStyle):
    name = "mosaicml-streaming"
    modules = ("streaming",)
    remote_modules = ("boto3",)

    def dataset_class(self) -> Any:
        from streaming import StreamingDataset
        from streaming.base.util import clean_stale_shared_memory

        clean_stale_shared_memory()  # a killed earlier run must not block this one
        return StreamingDataset


LIBRARY = MosaicML()
