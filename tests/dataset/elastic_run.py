"""One rank of a simulated job: ``python -m tests.dataset.elastic_run CONFIG_JSON``.

The rank learns its place from the environment contract (RANK, WORLD_SIZE, LOCAL_RANK,
LOCAL_WORLD_SIZE) — or from torch.distributed when ``gloo`` is set — iterates a DataLoader over
a StreamingDataset and writes the ``x`` values of every batch it received to a JSON file.
"""

from __future__ import annotations

import json
import os
import sys

import torch
from torch.utils.data import DataLoader

from streaming_lightning.dataset import Stream, StreamingDataset


def collate(samples: list[dict]) -> list[int]:  # type: ignore[type-arg]
    return [int(s["x"]) for s in samples]


def main() -> None:
    config = json.loads(sys.argv[1])
    if config.get("gloo"):
        torch.distributed.init_process_group(
            "gloo",
            init_method=config["init"],
            rank=int(os.environ["RANK"]),
            world_size=int(os.environ["WORLD_SIZE"]),
        )
        os.environ.pop("RANK")  # prove the process group, not the env, is what the dataset reads
        os.environ.pop("WORLD_SIZE")
    # "streams": [[remote_or_local, proportion], ...] mixes streams; "cache" puts remote data
    # behind one node-local cache shared by every rank, with an optional cache_limit;
    # "default_cache" reads the remote through the user's default cache directory.
    if config.get("streams"):
        sources = {
            "streams": [Stream(local=path, proportion=share) for path, share in config["streams"]]
        }
    elif config.get("cache"):
        sources = {"remote": config["data"], "local": config["cache"]}
    elif config.get("default_cache"):  # the per-user default cache directory for the remote
        sources = {"remote": config["data"]}
    else:
        sources = {"local": config["data"]}
    dataset = StreamingDataset(
        **sources,
        batching_method=config.get("batching", "random"),
        cache_limit=config.get("cache_limit"),
        batch_size=config["batch"],
        shuffle=True,
        num_canonical_nodes=config["ncn"],
        shuffle_seed=config.get("seed", 17),
        shuffle_algo=config.get("algo", "py1e"),
        replication=config.get("replication"),
    )
    if config.get("resume"):
        dataset.load_state_dict(config["resume"])
    loader = DataLoader(
        dataset, batch_size=config["batch"], num_workers=config["workers"], collate_fn=collate
    )
    out = {"len": len(dataset), "epochs": []}
    for _ in range(config.get("epochs", 1)):
        out["epochs"].append([batch for batch in loader])
    state = None
    if config.get("state_after"):
        state = dataset.state_dict(config["state_after"], True)
    out["state"] = state
    with open(config["out"], "w") as file:
        json.dump(out, file)
    if config.get("gloo"):
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
