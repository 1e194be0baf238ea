"""Any parquet files → MDS (``streaming-lightning convert parquet``): for teams whose data is
already in parquet, migration in one command."""
