"""Trainer integrations: ``integrations.lightning`` (StreamingDataModule, StreamingDataLoader,
StreamingResumeCallback) and ``integrations.composer`` (build_dataspec, StreamingMonitor).
Nothing here is imported by ``import streaming_lightning``: each integration imports its
framework itself."""
