"""The data position a checkpoint carries, and whether it can apply to this run.

A position is a :class:`~streaming_lightning.StreamingDataset` state (``dataset.state_dict``)
whose ``sample_in_epoch`` counts global samples the training loop consumed: every rank's
batches together. The epoch plan deals each global batch of ``global_batch_size`` samples across
the data-parallel ranks, so the position depends only on how many batches each rank consumed
(all ranks consume the same number), never on the world size or worker count. That is what makes
a checkpoint resumable on another number of ranks as long as the global batch is kept.

Two more fields make errors readable: ``dataset_samples`` and ``dataset_shards`` describe the
data the position belongs to, next to the dataset's fingerprint.
"""

from __future__ import annotations

from typing import Any

from streaming_lightning.dataset import StreamingDataset, World
from streaming_lightning.errors import ConfigError

#: Fields every position has (the dataset's own state adds more).
REQUIRED = ("epoch", "sample_in_epoch")


def describe_dataset(dataset: StreamingDataset) -> str:
    return (
        f"{dataset.size} samples in {len(dataset.shard_sizes)} shards "
        f"(fingerprint {dataset.fingerprint()})"
    )


def describe_saved(state: dict[str, Any]) -> str:
    if "dataset_samples" in state:
        return (
            f"{state['dataset_samples']} samples in {state.get('dataset_shards', '?')} shards "
            f"(fingerprint {state.get('fingerprint')})"
        )
    return f"fingerprint {state.get('fingerprint')}"


def position(
    dataset: StreamingDataset, world: World, epoch: int, sample_in_epoch: int
) -> dict[str, Any]:
    """The state that resumes ``dataset`` at ``sample_in_epoch`` global samples of ``epoch``."""
    state = dataset.state_dict(0, from_beginning=True)
    state.update(
        epoch=int(epoch),
        sample_in_epoch=int(sample_in_epoch),
        num_canonical_nodes=dataset.num_canonical_nodes(world),
        initial_physical_nodes=world.num_nodes,
        global_batch_size=dataset.global_batch(world),
        dataset_samples=dataset.size,
        dataset_shards=len(dataset.shard_sizes),
    )
    return state


def check_same_data(state: dict[str, Any], dataset: StreamingDataset) -> None:
    """Refuse a position that belongs to other data, naming both."""
    if not isinstance(state, dict) or any(key not in state for key in REQUIRED):
        keys = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise ConfigError(
            f"Not a streaming data position: expected the keys {list(REQUIRED)}, got {keys}."
        )
    saved = state.get("fingerprint")
    if saved is not None and saved != dataset.fingerprint():
        raise ConfigError(
            "The checkpoint's data position belongs to a different dataset: the checkpoint was "
            f"taken on {describe_saved(state)}, this run reads {describe_dataset(dataset)}. Resume "
            "with the same streams and epoch size, or start without the checkpoint."
        )


def check_applicable(state: dict[str, Any], dataset: StreamingDataset, world: World) -> None:
    """Refuse a position this run cannot continue exactly: other data, or another global batch
    size (the trainer counts the epoch's batches, so a batch of another size would shift every
    later step)."""
    check_same_data(state, dataset)
    saved = state.get("global_batch_size")
    current = dataset.global_batch(world)
    if saved is not None and int(saved) != current:
        per_device = dataset.batch_size or 1
        ranks = dataset.batch_span(world) // per_device
        plural = "rank" if ranks == 1 else "ranks"
        advice = (
            f"with {ranks} data-parallel {plural} use batch_size={int(saved) // ranks}"
            if int(saved) % ranks == 0
            else f"use a number of data-parallel ranks that divides {saved}"
        )
        raise ConfigError(
            f"The checkpoint's data position was taken with a global batch size of {saved}; this "
            f"run's global batch size is {current} (batch_size={per_device} x {ranks} "
            f"data-parallel {plural}). Keep the global batch size when resuming: {advice}."
        )


def advanced(state: dict[str, Any], epoch: int, sample_in_epoch: int) -> dict[str, Any]:
    """``state`` moved to another point (keeps the plan's canonical nodes, seed, batch)."""
    return {**state, "epoch": int(epoch), "sample_in_epoch": int(sample_in_epoch)}
