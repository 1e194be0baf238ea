"""Who am I in the job: rank, world size, node, and DataLoader worker.

Read when iteration starts, never when the dataset is constructed: Lightning (spawn,
notebooks) and Composer create datasets before the process group exists, and a dataset that
froze ``RANK``/``WORLD_SIZE`` at construction would give every process the same data.
Order of truth: an initialised ``torch.distributed`` process group, then the environment
contract (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``), then a single process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from streaming_lightning.errors import ConfigError


@dataclass(frozen=True)
class World:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    worker: int = 0
    num_workers: int = 1

    @property
    def node(self) -> int:
        return self.rank // self.local_world_size

    @property
    def num_nodes(self) -> int:
        return self.world_size // self.local_world_size

    def describe(self) -> str:
        """For error messages: which process is talking."""
        return f"rank {self.rank}/{self.world_size} worker {self.worker}/{self.num_workers}"


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"Environment variable {name}={value!r} is not an integer.") from None


def detect_world() -> World:
    """The current process's place in the job (see the module docstring for the order)."""
    rank, world_size = 0, 1
    local_rank, local_world_size = None, None
    try:
        import torch.distributed as dist

        initialized = dist.is_available() and dist.is_initialized()
    except ImportError:
        initialized = False
    if initialized:
        rank, world_size = dist.get_rank(), dist.get_world_size()
        local_world_size = _env_int("LOCAL_WORLD_SIZE")
        local_rank = _env_int("LOCAL_RANK")
    else:
        env_rank, env_world = _env_int("RANK"), _env_int("WORLD_SIZE")
        if env_world is not None:
            world_size = env_world
            rank = env_rank or 0
        local_rank, local_world_size = _env_int("LOCAL_RANK"), _env_int("LOCAL_WORLD_SIZE")
    if local_world_size is None:
        local_world_size = world_size  # no information: assume a single node
    if local_rank is None:
        local_rank = rank % local_world_size
    if (
        not (0 <= rank < world_size)
        or world_size % local_world_size
        or not 0 <= local_rank < local_world_size
    ):
        raise ConfigError(
            f"Inconsistent world: RANK={rank} WORLD_SIZE={world_size} LOCAL_RANK={local_rank} "
            f"LOCAL_WORLD_SIZE={local_world_size} (world size must be a multiple of the local one)."
        )
    worker, num_workers = 0, 1
    try:
        from torch.utils.data import get_worker_info

        info = get_worker_info()
    except ImportError:
        info = None
    if info is not None:
        worker, num_workers = info.id, info.num_workers
    return World(rank, world_size, local_rank, local_world_size, worker, num_workers)
