"""Trainer integrations: ``integrations.lightning`` (StreamingDataModule, StreamingDataLoader,
StreamingResumeCallback); Composer is next. Nothing here is imported by
``import streaming_lightning``: each integration imports its framework itself."""
