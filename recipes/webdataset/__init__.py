"""webdataset tar shards → MDS (``streaming-lightning convert webdataset``): a webdataset
user switches in one command."""
