"""``simulate``: how a dataset partitions for a job, before paying for the job.

Padding, per-device batch counts and above all how many shards each node must download in an
epoch (cache size, egress, time to first batch) follow from the epoch plan, which is a pure
function of the index, the world shape, the seed and the epoch. So this builds the dataset
(which fetches only index.json), asks it for the plan the job would iterate, and counts —
vectorised over each device's positions, so 10M samples on 64 devices take seconds.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from streaming_lightning.cli._common import Commands, human, positive_int
from streaming_lightning.dataset.shuffle import SHUFFLE_ALGORITHMS
from streaming_lightning.dataset.streaming_dataset import StreamingDataset
from streaming_lightning.dataset.world import World
from streaming_lightning.storage.local import local_path_of
from streaming_lightning.storage.registry import is_remote
from streaming_lightning.units import parse_bytes


@dataclass(frozen=True)
class Job:
    """The shape of a training job, as far as data partitioning cares."""

    nodes: int
    devices_per_node: int
    workers: int
    batch_size: int  # per device
    num_canonical_nodes: int | None = None
    epoch: int = 0

    @property
    def world(self) -> World:
        devices = self.nodes * self.devices_per_node
        return World(0, devices, 0, self.devices_per_node, 0, self.workers)


@dataclass(frozen=True)
class Simulation:
    """What one epoch of ``job`` looks like; arrays are indexed by rank or node."""

    global_batch: int
    num_canonical_nodes: int
    epoch_samples: int  # before padding
    padded_samples: int
    samples_per_device: int
    batches_per_device: int
    worker_batches: tuple[int, int]  # (min, max) batches a DataLoader worker produces
    device_shards: NDArray[np.int64]
    device_bytes: NDArray[np.int64]
    node_shards: NDArray[np.int64]
    node_bytes: NDArray[np.int64]

    @property
    def padding(self) -> int:
        return self.padded_samples - self.epoch_samples


def shard_bytes(dataset: StreamingDataset) -> NDArray[np.int64]:
    """Bytes to fetch per global shard: every file in its stored (maybe compressed) form."""
    return np.concatenate([stream.shard_table.stored_bytes for stream in dataset.streams]).astype(
        np.int64
    )


def simulate(dataset: StreamingDataset, job: Job) -> Simulation:
    """Count what each device and node of ``job`` reads in ``job.epoch`` of ``dataset``."""
    world = job.world
    devices = world.world_size
    ncn = job.num_canonical_nodes or dataset.num_canonical_nodes(world)
    global_batch = job.batch_size * devices
    plan = dataset.plan(job.epoch, world, num_canonical_nodes=ncn, global_batch=global_batch)
    sizes = shard_bytes(dataset)
    num_shards = len(sizes)
    device_shards = np.zeros(devices, np.int64)
    device_bytes = np.zeros(devices, np.int64)
    node_sets = np.zeros((job.nodes, num_shards), bool)
    for rank in range(devices):
        ids = plan.ids(plan.rank_positions(rank, devices, 0))
        shards, _ = dataset.locate(ids)
        used = np.zeros(num_shards, bool)
        used[shards] = True
        device_shards[rank] = int(used.sum())
        device_bytes[rank] = int(sizes[used].sum())
        node_sets[rank // job.devices_per_node] |= used
    per_device = plan.padded_samples // devices
    batches = -(-per_device // job.batch_size)
    return Simulation(
        global_batch=global_batch,
        num_canonical_nodes=ncn,
        epoch_samples=int(dataset.epoch_size),
        padded_samples=int(plan.padded_samples),
        samples_per_device=per_device,
        batches_per_device=batches,
        worker_batches=(batches // job.workers, -(-batches // job.workers)),
        device_shards=device_shards,
        device_bytes=device_bytes,
        node_shards=node_sets.sum(axis=1).astype(np.int64),
        node_bytes=node_sets.astype(np.int64) @ sizes,
    )


@dataclass(frozen=True)
class CacheSizing:
    """How large each node's cache must be (``cache_limit``), from the same rules the dataset
    enforces and warns with when an epoch starts."""

    readers: int  # processes of a node reading shards at once
    largest_shard: int  # bytes the largest evictable shard occupies in a cache (0: local data)
    minimum: int  # below this the epoch refuses to start (each reader holds one, fetches one)
    read_at_once: int  # shards the node's shuffle reads from at the same time
    ahead_shards: int  # shards one reader's predownload window spans
    recommended: int  # no re-downloads, prefetch never throttled
    epoch_bytes: int  # what the busiest node's cache grows to without a limit

    def verdict(self, cache_limit: int | None) -> str:
        if not self.largest_shard:
            return "local data is read in place: no cache, nothing evicted"
        if cache_limit is None:
            return (
                f"no cache_limit: each node keeps what it reads, up to "
                f"{human(self.epoch_bytes)} this epoch"
            )
        if cache_limit < self.minimum:
            return (
                f"cache_limit {human(cache_limit)} is below the minimum {human(self.minimum)}: "
                "the epoch would refuse to start (ConfigError)"
            )
        if cache_limit < self.recommended:
            return (
                f"cache_limit {human(cache_limit)} works but is below {human(self.recommended)}:"
                " shards are fetched again after eviction or prefetch is throttled "
                "(CacheThrashWarning when the shuffle reads more shards than fit)"
            )
        return f"cache_limit {human(cache_limit)} holds the working set and the prefetch window"


def cache_sizing(
    dataset: StreamingDataset, job: Job, sim: Simulation, predownload: int | None
) -> CacheSizing:
    """Per-node cache needs of ``job``: the minimum is ``readers x largest shard`` (what
    ``StreamingDataset`` checks at epoch start); the recommendation adds the shards the
    shuffle reads at once and, per reader, its predownload window, twice (a prefetch is
    allowed only while the queue fits in half the limit)."""
    world = job.world
    readers = job.devices_per_node * max(1, job.workers)
    largest = int(dataset._largest_evictable_shard)
    ahead = predownload if predownload is not None else 8 * job.batch_size
    per_shard = max(1.0, dataset.num_samples / max(1, len(dataset.shard_sizes)))
    ahead_shards = int(np.ceil(ahead / per_shard)) + 1 if ahead else 0
    read_at_once = dataset._shards_read_at_once(world)
    minimum = readers * largest
    recommended = max(minimum, (read_at_once + 2 * readers * ahead_shards) * largest)
    return CacheSizing(
        readers=readers,
        largest_shard=largest,
        minimum=minimum,
        read_at_once=read_at_once,
        ahead_shards=ahead_shards,
        recommended=recommended,
        epoch_bytes=int(sim.node_bytes.max()) if len(sim.node_bytes) else 0,
    )


def report(
    dataset: StreamingDataset,
    job: Job,
    sim: Simulation,
    where: str,
    sizing: CacheSizing | None = None,
    cache_limit: int | None = None,
) -> str:
    """The printed form of a simulation."""
    sizes = shard_bytes(dataset)
    shuffle = f"{dataset.shuffle_algo}, seed {dataset.shuffle_seed}" if dataset.shuffle else "off"
    pct = 100 * sim.padding / sim.epoch_samples if sim.epoch_samples else 0.0
    low, high = sim.worker_batches
    lines = [
        f"dataset               {where}: {dataset.num_samples:,} samples in {len(sizes):,} shards "
        f"({human(int(sizes.sum()))} stored)",
        f"job                   {job.nodes} nodes x {job.devices_per_node} devices x "
        f"{job.workers} workers, batch {job.batch_size} per device, epoch {job.epoch}",
        f"shuffle               {shuffle}",
        f"canonical nodes       {sim.num_canonical_nodes}",
        f"global batch          {sim.global_batch:,}",
        f"samples per epoch     {sim.epoch_samples:,} before padding, {sim.padded_samples:,} after",
        f"padding               {sim.padding:,} samples ({pct:.2f}%)",
        f"per device            {sim.samples_per_device:,} samples, "
        f"{sim.batches_per_device:,} batches",
        f"per worker            {low:,}-{high:,} batches",
        f"shards per device     min {int(sim.device_shards.min()):,}, "
        f"max {int(sim.device_shards.max()):,}",
        f"bytes per device      min {human(int(sim.device_bytes.min()))}, "
        f"max {human(int(sim.device_bytes.max()))}",
        "per node (distinct shards it must download this epoch)",
    ]
    for node, (count, size) in enumerate(zip(sim.node_shards.tolist(), sim.node_bytes.tolist())):
        lines.append(f"  node {node:<4} {count:>8,} shards  {human(size):>10}")
    if sizing is not None:
        lines.append("cache per node")
        if sizing.largest_shard:
            lines += [
                f"  readers             {sizing.readers} (devices x workers)",
                f"  largest shard       {human(sizing.largest_shard)}",
                f"  minimum             {human(sizing.minimum)} (readers x largest shard)",
                f"  recommended         {human(sizing.recommended)} ({sizing.read_at_once} shards "
                f"read at once + 2 x {sizing.readers} readers x {sizing.ahead_shards} shards of "
                "predownload)",
            ]
        lines.append(f"  verdict             {sizing.verdict(cache_limit)}")
    return "\n".join(lines)


def register(commands: Commands) -> None:
    parser = commands.add_parser(
        "simulate",
        help="show how a dataset partitions for a job, without running it",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("location", help="dataset directory or URL (only index.json is fetched)")
    parser.add_argument("--nodes", type=positive_int, required=True, help="machines")
    parser.add_argument(
        "--devices-per-node", type=positive_int, required=True, help="ranks (GPUs) per machine"
    )
    parser.add_argument(
        "--workers", type=positive_int, required=True, help="DataLoader workers per rank"
    )
    parser.add_argument(
        "--batch-size", type=positive_int, required=True, help="samples per device batch"
    )
    parser.add_argument(
        "--num-canonical-nodes",
        type=positive_int,
        default=None,
        help="default: the dataset's (number of nodes, x64 for py1s)",
    )
    parser.add_argument("--shuffle", action="store_true", help="shuffle, as shuffle=True does")
    parser.add_argument(
        "--shuffle-algo", default="py1e", choices=SHUFFLE_ALGORITHMS, help="default py1e"
    )
    parser.add_argument("--seed", type=int, default=9176, help="shuffle_seed (default 9176)")
    parser.add_argument("--epoch", type=int, default=0, help="epoch to simulate (default 0)")
    parser.add_argument("--split", default=None, help="sub-directory holding index.json")
    parser.add_argument(
        "--predownload",
        type=int,
        default=None,
        help="samples each reader fetches ahead (default: the dataset's, 8 x batch size)",
    )
    parser.add_argument(
        "--cache-limit", default=None, help="the cache_limit to check, e.g. 20gb (default: none)"
    )
    parser.set_defaults(run=run)


def open_dataset(args: argparse.Namespace, scratch: str) -> StreamingDataset:
    """The dataset as the job would build it; a remote one caches only its index.json, in
    ``scratch``. Nothing is written into a local dataset."""
    remote = args.location if is_remote(args.location) else None
    return StreamingDataset(
        remote=remote,
        local=scratch if remote else local_path_of(args.location),
        split=args.split,
        shuffle=args.shuffle,
        shuffle_algo=args.shuffle_algo,
        shuffle_seed=args.seed,
        batch_size=args.batch_size,
        num_canonical_nodes=args.num_canonical_nodes,
    )


def run(args: argparse.Namespace) -> int:
    job = Job(
        nodes=args.nodes,
        devices_per_node=args.devices_per_node,
        workers=args.workers,
        batch_size=args.batch_size,
        num_canonical_nodes=args.num_canonical_nodes,
        epoch=args.epoch,
    )
    cache_limit = parse_bytes(args.cache_limit) if args.cache_limit else None
    with tempfile.TemporaryDirectory(prefix="sl-simulate-") as scratch:
        dataset = open_dataset(args, scratch)
        sim = simulate(dataset, job)
        sizing = cache_sizing(dataset, job, sim, args.predownload)
        print(report(dataset, job, sim, args.location, sizing, cache_limit))
    return 0
