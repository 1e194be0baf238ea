"""``make demo``: the main job at this stage of the project.

Writes a small dataset of token sequences and images in MDS (zstd, hashed), reads it back with
integrity checks, and prints what it did. Later milestones replace this with training runs
(``python train.py yamls/cifar10.yaml``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
from PIL import Image

from streaming_lightning import LocalDataset, MDSWriter


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", default=None, help="dataset directory (default: a temp dir)")
    parser.add_argument("--samples", type=int, default=20_000)
    args = parser.parse_args(argv)
    out = args.out or os.path.join(tempfile.mkdtemp(prefix="sl-demo-"), "dataset")

    rng = np.random.default_rng(0)
    columns = {"tokens": "ndarray:uint16:128", "label": "int", "image": "png"}
    start = time.perf_counter()
    with MDSWriter(
        out=out,
        columns=columns,
        compression="zstd",
        hashes=["sha1", "xxh64"],
        size_limit="1mb",
        progress_bar=True,
    ) as writer:
        for i in range(args.samples):
            writer.write(
                {
                    "tokens": rng.integers(0, 50_000, 128, dtype=np.uint16),
                    "label": i % 10,
                    "image": Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)),
                }
            )
    wrote = time.perf_counter() - start

    start = time.perf_counter()
    dataset = LocalDataset(out, validate_hash="xxh64")
    labels = np.fromiter((sample["label"] for sample in dataset), np.int64, len(dataset))
    read = time.perf_counter() - start
    assert np.array_equal(labels, np.arange(args.samples) % 10), "samples came back out of order"
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print(
        f"wrote {args.samples} samples in {len(dataset.shards)} shards ({size / 1e6:.1f} MB) "
        f"to {out} in {wrote:.2f}s ({args.samples / wrote:,.0f} samples/s)"
    )
    print(f"verified and read them back in {read:.2f}s ({args.samples / read:,.0f} samples/s)")
    print(
        f"sample 123: label={dataset[123]['label']} tokens[:5]={dataset[123]['tokens'][:5].tolist()} "
        f"image={dataset[123]['image'].size}"
    )


if __name__ == "__main__":
    main()
