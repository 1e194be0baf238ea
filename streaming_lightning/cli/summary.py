"""``inspect``: what a dataset holds, from its index alone — so it costs one small download
even for a remote dataset of terabytes. (Named ``summary`` to stay clear of stdlib ``inspect``.)"""

from __future__ import annotations

import argparse
from collections import Counter

from streaming_lightning.cli._common import Commands, human, load_any_index


def summarize(location: str, split: str | None = None) -> str:
    """A human-readable summary of a dataset's index."""
    index_url, shards = load_any_index(location, split)
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
        f"size         {human(raw)} raw, {human(stored)} stored",
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


def register(commands: Commands) -> None:
    parser = commands.add_parser(
        "inspect",
        help="summarize a dataset (local dir or URL)",
        description="Summarize a dataset from its index.json: shards, samples, sizes, "
        "compression, hashes and columns. Only the index is downloaded.",
    )
    parser.add_argument("location", help="dataset directory or URL (s3://, gs://, ...)")
    parser.add_argument("--split", default=None, help="sub-directory holding index.json")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    print(summarize(args.location, args.split))
    return 0
