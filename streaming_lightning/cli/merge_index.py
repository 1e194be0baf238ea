"""``merge-index``: one index.json over datasets written in parts (one writer per process or
per machine), so training reads them as a single dataset."""

from __future__ import annotations

import argparse

from streaming_lightning.cli._common import Commands
from streaming_lightning.storage.merge import merge_index


def register(commands: Commands) -> None:
    parser = commands.add_parser(
        "merge-index",
        help="merge sub-dataset indexes under a root",
        description="Write OUT/index.json naming the shards of every sub-dataset: those of the "
        "given index files, or, with none given, of every index.json under OUT.",
    )
    parser.add_argument("out", help="root directory or URL to write index.json into")
    parser.add_argument("index_files", nargs="*", help="index.json files (default: all under OUT)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    merged = merge_index(args.index_files, args.out) if args.index_files else merge_index(args.out)
    print(f"wrote {merged}")
    return 0
