"""``python -m recipes.laion convert --in RAW --out DIR_OR_URL [...]``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from recipes.common.cli import run_command
from recipes.common.convert import add_write_arguments, write_options
from recipes.laion.convert import convert


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recipes.laion", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    conv = commands.add_parser(
        "convert", help="img2dataset output (tar or files shards + parquet) -> MDS <out>/<split>"
    )
    conv.add_argument(
        "--in", dest="raw", required=True, help="img2dataset's output folder (00000.tar, ...)"
    )
    conv.add_argument(
        "--split", default="train", help="subfolder of --out to write (default train)"
    )
    conv.add_argument(
        "--min-similarity",
        type=float,
        default=None,
        help="keep only samples whose CLIP similarity is at least this (e.g. 0.28)",
    )
    conv.add_argument(
        "--skip-bad",
        action="store_true",
        help="skip (name and count) listed images that are missing or do not decode, "
        "instead of stopping",
    )
    conv.add_argument(
        "--engine",
        choices=("processes", "spark", "ray"),
        default="processes",
        help="who converts the shards: --workers local processes (default), Spark (the "
        "session spark-submit configures, else local[*]) or Ray (the cluster at RAY_ADDRESS, "
        "else a local one); --in must then be readable by every executor",
    )
    add_write_arguments(conv)
    args = parser.parse_args(argv)
    return run_command(lambda: _convert(args))


def _convert(args: argparse.Namespace) -> dict[str, Any]:
    common = {
        "split": args.split or None,
        "min_similarity": args.min_similarity,
        "skip_bad": args.skip_bad,
    }
    if args.engine == "spark":
        from pyspark.sql import SparkSession

        from recipes.laion.distributed import convert_on_spark

        spark = SparkSession.builder.appName("laion-to-mds").getOrCreate()
        try:
            return convert_on_spark(spark, args.raw, write_options(args), **common)
        finally:
            spark.stop()
    if args.engine == "ray":
        import ray

        from recipes.laion.distributed import convert_on_ray

        ray.init(address=os.environ.get("RAY_ADDRESS") or None, include_dashboard=False)
        try:
            return convert_on_ray(args.raw, write_options(args), **common)
        finally:
            ray.shutdown()
    return convert(args.raw, write_options(args), **common)


if __name__ == "__main__":
    sys.exit(main())
