"""One training run of the determinism experiment: ``python -m experiments.determinism_rank CFG``.

Lightning's DDP launcher re-runs this command once per extra rank (gloo on CPU), exactly as it
does for a user's ``train.py``. Every step, each rank's loss and the ids of the samples in its
device batch are gathered; rank 0 writes the per-step global loss and global batch (rank order)
to ``CFG["out"]``. ``CFG["loader"]`` picks the data path: ``streaming`` (our
StreamingDataModule over the MDS copy) or ``sampler`` (a map-style dataset of the same arrays
that Lightning shards with a plain ``DistributedSampler``).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from streaming_lightning.integrations.lightning import StreamingDataModule


class Recorder(pl.LightningModule):
    """A small MLP classifier that records the global loss and global batch of each step."""

    def __init__(self, features: int, classes: int, lr: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(features, 64), nn.Tanh(), nn.Linear(64, classes))
        self.lr = lr
        self.losses: list[float] = []
        self.batches: list[list[int]] = []

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        if isinstance(batch, dict):
            x, y, ids = batch["x"], batch["y"], batch["id"]
        else:
            x, y, ids = batch
        loss = nn.functional.cross_entropy(self.net(x), y)
        # Every rank's batch has the same size, so the mean of rank means is the global mean.
        losses = self.all_gather(loss.detach())
        gathered = self.all_gather(ids)
        assert isinstance(losses, torch.Tensor) and isinstance(gathered, torch.Tensor)
        if self.global_rank == 0:
            self.losses.append(float(losses.double().mean()))
            self.batches.append([int(i) for i in gathered.reshape(-1).tolist()])
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


def sampler_loader(config: dict[str, Any], local_batch: int) -> DataLoader:  # type: ignore[type-arg]
    arrays = np.load(config["arrays"])
    dataset = TensorDataset(
        torch.from_numpy(arrays["x"]),
        torch.from_numpy(arrays["y"].astype(np.int64)),
        torch.from_numpy(arrays["id"].astype(np.int64)),
    )
    # Lightning swaps in DistributedSampler(shuffle=True) under DDP: the map-style baseline.
    return DataLoader(dataset, batch_size=local_batch, shuffle=True, num_workers=0)


def main() -> None:
    with open(sys.argv[1]) as file:
        config = json.load(file)
    torch.set_num_threads(1)
    world = int(config["world"])
    local_batch = int(config["global_batch"]) // world
    pl.seed_everything(config["seed"], workers=True, verbose=False)
    model = Recorder(config["features"], config["classes"], config["lr"])
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=world,
        strategy="ddp",
        max_epochs=config["epochs"],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        deterministic=True,
    )
    if config["loader"] == "streaming":
        datamodule = StreamingDataModule(
            train={
                "local": config["data"],
                "shuffle": True,
                "shuffle_seed": config["seed"],
                "num_canonical_nodes": config["num_canonical_nodes"],
            },
            batch_size=local_batch,
            num_workers=config["workers"],
        )
        trainer.fit(model, datamodule=datamodule)
    else:
        trainer.fit(model, train_dataloaders=sampler_loader(config, local_batch))
    if trainer.global_rank == 0:
        tmp = f"{config['out']}.{os.getpid()}.tmp"
        with open(tmp, "w") as file:
            json.dump({"losses": model.losses, "batches": model.batches}, file)
        os.replace(tmp, config["out"])


if __name__ == "__main__":
    main()
