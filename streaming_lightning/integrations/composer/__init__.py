"""Composer integration: a DataSpec whose dataset Composer checkpoints and resumes mid-epoch at
exactly the next unseen batch, and a callback that logs data throughput and stall time and
validates resumes.

- :func:`build_dataspec` makes a ``composer.core.DataSpec`` from a StreamingDataset or its
  config (dict/OmegaConf, ``streams`` included), with ``num_samples`` and token counting.
- :class:`StreamingMonitor` logs ``streaming/*`` metrics and checks a resumed run's data.

Importing this package imports Composer; ``import streaming_lightning`` never does.
"""

from __future__ import annotations

from streaming_lightning.extras import require_extra

require_extra(
    "composer.core",
    "composer",
    "streaming_lightning.integrations.composer (Composer, mosaicml>=0.28)",
)

from streaming_lightning.integrations.composer.callback import StreamingMonitor  # noqa: E402
from streaming_lightning.integrations.composer.dataspec import (  # noqa: E402
    CountSamples,
    CountTokens,
    DatasetMismatchError,
    build_dataspec,
)

__all__ = [
    "CountSamples",
    "CountTokens",
    "DatasetMismatchError",
    "StreamingMonitor",
    "build_dataspec",
]
