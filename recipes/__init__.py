"""Per-dataset converters (raw format -> MDS) and dataset classes; filled by the recipes issue."""
