"""Trainer integrations (Lightning, Composer). Empty until their issues land; nothing here is
imported by ``import streaming_lightning``."""
