"""Benchmarks against mosaicml-streaming, litdata and webdataset (`make bench`)."""
