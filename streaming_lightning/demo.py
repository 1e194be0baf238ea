"""``make demo``: the main job at this stage of the project.

1. Writes a dataset of token sequences and images in MDS (zstd, hashed).
2. Streams it, shuffled, through a ``DataLoader`` with 2 workers, as rank 0 of a 2-rank job
   (the environment contract), and checkpoints after 10 steps.
3. "Crashes", resumes from the checkpoint in a fresh dataset as a 1-rank job with the same
   global batch, and checks that the resumed run yields exactly the rest of the epoch.

Later milestones replace this with training runs (``python train.py yamls/cifar10.yaml``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
from PIL import Image
from torch.utils.data import DataLoader

from streaming_lightning import MDSWriter, StreamingDataset


def _labels(batch: list[dict]) -> list[int]:  # type: ignore[type-arg]
    return [int(sample["label"]) for sample in batch]


def _stream(
    data: str, world: int, rank: int, batch: int, state: dict | None = None
) -> tuple[list[int], dict]:  # type: ignore[type-arg]
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world)
    )
    dataset = StreamingDataset(local=data, shuffle=True, batch_size=batch, num_canonical_nodes=2)
    if state:
        dataset.load_state_dict(state)
    loader = DataLoader(dataset, batch_size=batch, num_workers=2, collate_fn=_labels)
    seen = [x for labels in loader for x in labels]
    return seen, dataset.state_dict(10 * batch * world, from_beginning=True)


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
                    "label": i,
                    "image": Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)),
                }
            )
    wrote = time.perf_counter() - start
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print(
        f"wrote {args.samples} samples ({size / 1e6:.1f} MB) to {out} in {wrote:.2f}s "
        f"({args.samples / wrote:,.0f} samples/s)"
    )

    # Rank 0 of 2, device batch 16 (global batch 32): read the epoch, checkpoint at step 10.
    start = time.perf_counter()
    rank0, state = _stream(out, world=2, rank=0, batch=16)
    rank1, _ = _stream(out, world=2, rank=1, batch=16)
    read = time.perf_counter() - start
    steps = [rank0[i : i + 16] + rank1[i : i + 16] for i in range(0, len(rank0), 16)]
    order = [x for step in steps for x in step]
    assert set(order) == set(range(args.samples)), "a sample went missing"
    print(
        f"streamed the epoch shuffled as 2 ranks x 2 workers in {read:.2f}s: {len(steps)} global "
        f"batches of 32, {len(order) - args.samples} padded samples, every sample present"
    )

    # Resume on 1 rank with the same global batch of 32: exactly the rest of the epoch.
    start = time.perf_counter()
    resumed, _ = _stream(out, world=1, rank=0, batch=32, state=state)
    assert resumed == order[state["sample_in_epoch"] :], "resume did not continue exactly"
    print(
        f"resumed at sample {state['sample_in_epoch']} on 1 rank in {time.perf_counter() - start:.2f}s: "
        f"the remaining {len(resumed)} samples came in exactly the original order"
    )


if __name__ == "__main__":
    main()
