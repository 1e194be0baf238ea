"""``streaming-lightning`` command line: inspect, list, download and merge datasets.

    streaming-lightning inspect s3://bucket/dataset [--split train]
    streaming-lightning ls s3://bucket/prefix
    streaming-lightning download s3://bucket/dataset /local/dir [--workers 16 --validate-hash xxh64]
    streaming-lightning merge-index s3://bucket/out [INDEX_URL ...]

Recipes add ``python -m recipes.<name> convert``; training runs through ``train.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from typing import Any

from streaming_lightning.errors import StreamingError
from streaming_lightning.format.index import INDEX_BASENAME, load_index
from streaming_lightning.storage.dataset_sync import download_dataset
from streaming_lightning.storage.merge import merge_index
from streaming_lightning.storage.registry import is_remote
from streaming_lightning.storage.transfer import download_file, list_objects
from streaming_lightning.storage.uploader import join_url


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def _load_any_index(location: str, split: str | None) -> tuple[str, list[dict[str, Any]]]:
    root = join_url(location, split) if split else location
    index_url = join_url(root, INDEX_BASENAME)
    if not is_remote(location):
        return index_url, load_index(index_url)
    with tempfile.TemporaryDirectory(prefix="sl-inspect-") as tmp:
        path = download_file(index_url, os.path.join(tmp, INDEX_BASENAME))
        return index_url, load_index(path)


def summarize(location: str, split: str | None = None) -> str:
    """A human-readable summary of a dataset's index."""
    index_url, shards = _load_any_index(location, split)
    samples = sum(s["samples"] for s in shards)
    raw = sum(s["raw_data"]["bytes"] + (s.get("raw_meta") or {}).get("bytes", 0) for s in shards)
    stored = sum(
        (s.get("zip_data") or s["raw_data"])["bytes"]
        + (s.get("zip_meta") or s.get("raw_meta") or {}).get("bytes", 0)
        for s in shards
    )
    lines = [
        f"dataset      {index_url}",
        f"shards       {len(shards)}",
        f"samples      {samples:,}",
        f"size         {_human(raw)} raw, {_human(stored)} stored",
        f"formats      {dict(Counter(s['format'] for s in shards))}",
        f"compression  {dict(Counter(str(s.get('compression')) for s in shards))}",
        f"hashes       {sorted({h for s in shards for h in s.get('hashes', [])})}",
    ]
    if shards and shards[0]["format"] == "mds":
        lines.append("columns")
        first = shards[0]
        for name, encoding in zip(first["column_names"], first["column_encodings"]):
            lines.append(f"  {name:<20} {encoding}")
    elif shards:
        columns = shards[0].get("columns") or dict(
            zip(shards[0].get("column_names", []), shards[0].get("column_encodings", []))
        )
        lines.append("columns")
        lines.extend(f"  {name:<20} {encoding}" for name, encoding in columns.items())
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streaming-lightning", description=__doc__.splitlines()[0] if __doc__ else ""
    )
    commands = parser.add_subparsers(dest="command", required=True)

    inspect = commands.add_parser("inspect", help="summarize a dataset (local dir or URL)")
    inspect.add_argument("location")
    inspect.add_argument("--split", default=None)

    ls = commands.add_parser("ls", help="list objects under a URL or directory")
    ls.add_argument("location")

    download = commands.add_parser("download", help="copy a dataset to a local directory")
    download.add_argument("remote")
    download.add_argument("local")
    download.add_argument("--split", default=None)
    download.add_argument("--workers", type=int, default=8)
    download.add_argument("--retry", type=int, default=2)
    download.add_argument("--timeout", type=float, default=60.0)
    download.add_argument("--validate-hash", default=None)

    merge = commands.add_parser("merge-index", help="merge sub-dataset indexes under a root")
    merge.add_argument("out")
    merge.add_argument("index_files", nargs="*")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "inspect":
            print(summarize(args.location, args.split))
        elif args.command == "ls":
            for url in list_objects(args.location):
                print(url)
        elif args.command == "download":
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
        elif args.command == "merge-index":
            merged = (
                merge_index(args.index_files, args.out)
                if args.index_files
                else merge_index(args.out)
            )
            print(f"wrote {merged}")
    except StreamingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
