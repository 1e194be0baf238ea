"""One rank of a job over a dataset: ``python -m tests.dataset.shard_index_probe CONFIG``.

Constructs a StreamingDataset (RANK/WORLD_SIZE from the environment), reads its share of an
epoch through a DataLoader with 2 *spawned* workers (each unpickles the dataset), and prints
the sample ids and the shard table file it mapped. Logging goes to stderr at INFO, so the
parent can count how many processes of the "node" built a shard table.
"""

from __future__ import annotations

import json
import logging
import sys

from torch.utils.data import DataLoader

from streaming_lightning.dataset import StreamingDataset


def main() -> None:
    config = json.loads(sys.argv[1])
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    dataset = StreamingDataset(
        remote=config["remote"], local=config["local"], shuffle=True, batch_size=4
    )
    loader = DataLoader(dataset, batch_size=4, num_workers=2, multiprocessing_context="spawn")
    ids = [int(x) for batch in loader for x in batch["x"]]
    print(json.dumps({"ids": ids, "table": dataset.streams[0].shard_table.path}))


if __name__ == "__main__":
    main()
