"""``ls``: list objects under a URL the way the library sees them (same credentials and
endpoints as training), to debug "file not found" without a cloud CLI."""

from __future__ import annotations

import argparse

from streaming_lightning.cli._common import Commands
from streaming_lightning.storage.transfer import list_objects


def register(commands: Commands) -> None:
    parser = commands.add_parser(
        "ls",
        help="list objects under a URL or directory",
        description="List every object under a URL or directory prefix, one per line.",
    )
    parser.add_argument("location", help="URL prefix or directory")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    for url in list_objects(args.location):
        print(url)
    return 0
