"""Bytes ⇄ samples: shard writers and readers for MDS, CSV/TSV/XSV and JSON lines, the index,
compression, hashing and column encodings. No network I/O happens in this layer."""

from streaming_lightning.format.compression import (
    compress,
    decompress,
    get_compressions,
    is_compression,
)
from streaming_lightning.format.encodings import (
    get_mds_encoded_size,
    get_mds_encodings,
    is_mds_encoding,
    mds_decode,
    mds_encode,
)
from streaming_lightning.format.hashing import get_hashes, hash_bytes, is_hash
from streaming_lightning.format.index import FileInfo, get_index_basename, load_index
from streaming_lightning.format.jsonl.reader import JSONReader
from streaming_lightning.format.jsonl.writer import JSONWriter
from streaming_lightning.format.local import LocalDataset
from streaming_lightning.format.mds.reader import MDSReader
from streaming_lightning.format.mds.writer import MDSWriter
from streaming_lightning.format.merge import merge_local
from streaming_lightning.format.reader import ShardReader
from streaming_lightning.format.readers import reader_from_json
from streaming_lightning.format.writer import OutputExistsError, ShardWriter
from streaming_lightning.format.xsv.reader import CSVReader, TSVReader, XSVReader
from streaming_lightning.format.xsv.writer import CSVWriter, TSVWriter, XSVWriter

__all__ = [
    "CSVReader",
    "CSVWriter",
    "FileInfo",
    "JSONReader",
    "JSONWriter",
    "LocalDataset",
    "MDSReader",
    "MDSWriter",
    "OutputExistsError",
    "ShardReader",
    "ShardWriter",
    "TSVReader",
    "TSVWriter",
    "XSVReader",
    "XSVWriter",
    "compress",
    "decompress",
    "get_compressions",
    "get_hashes",
    "get_index_basename",
    "get_mds_encoded_size",
    "get_mds_encodings",
    "hash_bytes",
    "is_compression",
    "is_hash",
    "is_mds_encoding",
    "load_index",
    "mds_decode",
    "mds_encode",
    "merge_local",
    "reader_from_json",
]
