"""A Hugging Face ``datasets`` dataset saved on disk → MDS (``streaming-lightning convert hf``):
no hub access, only what ``save_to_disk`` wrote."""
