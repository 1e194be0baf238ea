"""``download``: copy a dataset to local disk ahead of training (e.g. onto a node's NVMe), with
sizes — and optionally digests — checked before each file lands."""

from __future__ import annotations

import argparse

from streaming_lightning.cli._common import Commands, positive_int
from streaming_lightning.storage.dataset_sync import download_dataset


def register(commands: Commands) -> None:
    parser = commands.add_parser(
        "download",
        help="copy a dataset to a local directory",
        description="Download index.json and every shard file of a dataset into a local "
        "directory, in their stored (compressed) form.",
    )
    parser.add_argument("remote", help="dataset URL or directory")
    parser.add_argument("local", help="destination directory")
    parser.add_argument("--split", default=None, help="sub-directory holding index.json")
    parser.add_argument("--workers", type=positive_int, default=8, help="parallel downloads")
    parser.add_argument("--retry", type=int, default=2, help="retries per file (transient errors)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per operation")
    parser.add_argument(
        "--validate-hash", default=None, metavar="ALGO", help="check each file's digest (xxh64 ...)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    shards = download_dataset(
        args.remote,
        args.local,
        split=args.split,
        workers=args.workers,
        retry=args.retry,
        timeout=args.timeout,
        validate_hash=args.validate_hash,
        progress_bar=True,
    )
    print(f"downloaded {len(shards)} shards to {args.local}")
    return 0
