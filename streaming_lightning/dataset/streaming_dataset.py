"""StreamingDataset: a PyTorch IterableDataset over one or more streams of shards, with the
constructor of mosaicml-streaming's, so switching is one import.

What happens where:
- construction: validate arguments, load every stream's index (downloading index.json);
- ``__iter__`` (in each rank and DataLoader worker): detect the world *now*, pick the epoch and
  resume point from the shared epoch state, compute this worker's batches from the epoch plan
  (pure, chunked), fetch shards through the node cache ahead of use, decode samples;
- ``state_dict`` / ``load_state_dict``: a global sample position, valid for any world size,
  worker count and global batch size (a changed global batch re-deals the rest of the epoch).
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import json
import os
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from torch.utils.data import IterableDataset, get_worker_info

from streaming_lightning.dataset.batching import (
    BATCHING_METHODS,
    MappedPlan,
    StratifiedPlan,
    UnitPlan,
    stratified_quotas,
)
from streaming_lightning.dataset.cache import (
    ShardCache,
    ShardRef,
    check_cache_fits,
    check_cache_limit,
    largest_footprint,
)
from streaming_lightning.dataset.epoch_state import EpochState
from streaming_lightning.dataset.plan import Dealing, EpochPlan, PlanSpec, RebasedPlan
from streaming_lightning.dataset.ranged import RangedReads
from streaming_lightning.dataset.reading import EpochReader
from streaming_lightning.dataset.sample_space import EpochSpace, build_space, samples_per_stream
from streaming_lightning.dataset.shuffle import SHUFFLE_ALGORITHMS, default_block_size
from streaming_lightning.dataset.stream import Stream
from streaming_lightning.dataset.world import World, detect_world
from streaming_lightning.errors import CacheThrashWarning, ConfigError
from streaming_lightning.units import parse_bytes

STATE_VERSION = 1


class StreamingDataset(IterableDataset):  # type: ignore[type-arg]
    """Stream samples from shards in local or remote storage; see the module docstring."""

    def __init__(
        self,
        *,
        streams: Sequence[Stream] | None = None,
        remote: str | None = None,
        local: str | None = None,
        split: str | None = None,
        download_retry: int = 2,
        download_timeout: float = 60,
        validate_hash: str | None = None,
        keep_zip: bool = False,
        epoch_size: int | str | None = None,
        predownload: int | None = None,
        cache_limit: int | str | None = None,
        sampling_method: str = "balanced",
        sampling_granularity: int = 1,
        partition_algo: str = "relaxed",
        num_canonical_nodes: int | None = None,
        batch_size: int | None = None,
        shuffle: bool = False,
        shuffle_algo: str = "py1e",
        shuffle_seed: int = 9176,
        shuffle_block_size: int | None = None,
        batching_method: str = "random",
        allow_unsafe_types: bool = False,
        replication: int | None = None,
        ranged_reads: bool = False,
        whole_batches: bool = True,
    ) -> None:
        """Arguments are mosaicml-streaming's, plus:

        - ``ranged_reads``: on a cold start, read the samples the first batches need straight
          out of the remote shards by byte range while the shards download (see
          :mod:`streaming_lightning.dataset.ranged`). Off by default: it pays only where the
          store serves a range in about one round trip whatever the object's size (S3, GCS,
          Azure, OCI do), and costs where it does not (moto copies the whole object for each
          range).
        - ``whole_batches``: True (training, the default): the epoch is dealt in global
          batches, every rank runs the same number of full device batches, and up to
          ``global batch - 1`` samples repeat to fill the last one. False (evaluation, what
          :class:`~streaming_lightning.integrations.lightning.StreamingDataModule` uses for
          val/test/predict): samples are dealt one per rank at a time, as DistributedSampler
          does, so one rank sees every sample exactly once and N ranks repeat at most N - 1
          (every rank still gets as many batches), and each rank's last batch may be short —
          a metric over the split counts each sample once.
        """
        if streams is not None and (remote is not None or local is not None):
            raise ConfigError("Pass either streams= or remote=/local=, not both.")
        if sampling_method not in ("balanced", "fixed"):
            raise ConfigError(
                f"sampling_method must be 'balanced' or 'fixed', got {sampling_method!r}."
            )
        if sampling_granularity < 1:
            raise ConfigError("sampling_granularity must be >= 1.")
        if partition_algo not in ("relaxed", "orig"):
            raise ConfigError(
                f"partition_algo must be 'relaxed' or 'orig', got {partition_algo!r}."
            )
        if shuffle_algo not in SHUFFLE_ALGORITHMS:
            raise ConfigError(
                f"Unknown shuffle_algo {shuffle_algo!r}; choose one of {SHUFFLE_ALGORITHMS}."
            )
        if batching_method not in BATCHING_METHODS:
            raise ConfigError(
                f"batching_method must be one of {BATCHING_METHODS}, got {batching_method!r}."
            )
        if not whole_batches and batching_method != "random":
            raise ConfigError(
                f"batching_method={batching_method!r} builds whole batches from its streams; "
                "use it with whole_batches=True (whole_batches=False is for evaluation)."
            )
        if replication is not None and (not isinstance(replication, int) or replication < 1):
            raise ConfigError(f"replication must be a positive integer, got {replication!r}.")
        if batching_method != "random" and batch_size is None:
            raise ConfigError(
                f"batching_method={batching_method!r} forms batches itself: pass batch_size= "
                "(the per-device batch size your DataLoader uses)."
            )
        if batch_size is not None and batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}.")
        if num_canonical_nodes is not None and num_canonical_nodes < 1:
            raise ConfigError("num_canonical_nodes must be >= 1.")
        if shuffle_block_size is not None and shuffle_block_size < 1:
            raise ConfigError("shuffle_block_size must be >= 1.")
        if predownload is not None and predownload < 0:
            raise ConfigError("predownload must be >= 0.")

        self.streams = (
            list(streams)
            if streams is not None
            else [Stream(remote=remote, local=local, split=split)]
        )
        if not self.streams:
            raise ConfigError("streams= is empty.")
        for stream in self.streams:
            stream.apply_defaults(
                download_retry=download_retry,
                download_timeout=download_timeout,
                validate_hash=validate_hash,
                keep_zip=keep_zip,
            )
            stream.load(allow_unsafe_types=allow_unsafe_types)
        self._check_columns()

        self.batch_size = batch_size
        self.shuffle = shuffle
        self.shuffle_algo = shuffle_algo
        self.shuffle_seed = shuffle_seed
        self.sampling_method = sampling_method
        self.sampling_granularity = sampling_granularity
        self.partition_algo = partition_algo
        self.batching_method = batching_method
        self.replication = replication or 1
        self.allow_unsafe_types = allow_unsafe_types
        self.ranged_reads = bool(ranged_reads)
        self.whole_batches = bool(whole_batches)
        self.predownload = predownload
        self.cache_limit = parse_bytes(cache_limit) if cache_limit is not None else None
        if self.cache_limit is not None:
            check_cache_limit(self.streams, self.cache_limit)
        self._num_canonical_nodes = num_canonical_nodes
        self._shuffle_block_size = shuffle_block_size

        self.stream_sizes = [stream.num_samples for stream in self.streams]
        self.stream_offsets = np.concatenate([[0], np.cumsum(self.stream_sizes)]).astype(np.int64)
        self.shard_sizes = np.concatenate([stream.shard_sizes for stream in self.streams]).astype(
            np.int64
        )
        self.shard_offsets = np.concatenate([[0], np.cumsum(self.shard_sizes)]).astype(np.int64)
        self.shard_stream = np.concatenate(
            [np.full(len(stream.shards), i, np.int64) for i, stream in enumerate(self.streams)]
        )
        self.stream_first_shard = np.concatenate(
            [[0], np.cumsum([len(s.shards) for s in self.streams])]
        ).astype(np.int64)
        self.num_samples = int(self.shard_offsets[-1])
        if self.num_samples == 0:
            raise ConfigError(f"The dataset {[s.describe() for s in self.streams]} has no samples.")
        self.samples_per_stream = samples_per_stream(
            self.stream_sizes,
            proportions=[s.proportion for s in self.streams],
            repeats=[s.repeat for s in self.streams],
            chooses=[s.choose for s in self.streams],
            epoch_size=parse_bytes(epoch_size) if isinstance(epoch_size, str) else epoch_size,
        )
        self.epoch_size = int(sum(self.samples_per_stream))
        self._state = EpochState()
        self._cache: ShardCache | None = None
        self._cache_pid: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickled into spawned DataLoader workers: the shard cache handle (locks, maps) is
        per process and is made again there on first use."""
        state = self.__dict__.copy()
        state.update(_cache=None, _cache_pid=None)
        state.pop("_plan_reader", None)
        return state

    # ------------------------------------------------------------------ facts

    @property
    def size(self) -> int:
        """Samples in the underlying dataset (all streams, no repeats)."""
        return self.num_samples

    def _check_columns(self) -> None:
        first = self.streams[0].columns()
        for stream in self.streams[1:]:
            if stream.columns() != first:
                raise ConfigError(
                    f"Streams have different columns: {self.streams[0].describe()} has {first}, "
                    f"{stream.describe()} has {stream.columns()}."
                )

    def num_canonical_nodes(self, world: World) -> int:
        if self._num_canonical_nodes is not None:
            return self._num_canonical_nodes
        return (64 if self.shuffle_algo == "py1s" else 1) * world.num_nodes

    def global_batch(self, world: World) -> int:
        """Positions of one step of the epoch plan: the global batch, or with
        ``whole_batches=False`` one sample per data-parallel rank."""
        per_rank = (self.batch_size or 1) if self.whole_batches else 1
        return per_rank * self._data_parallel(world)[1]

    def batch_span(self, world: World) -> int:
        """Epoch positions one device batch on every data-parallel rank consumes: what a
        loop's count of batches converts to a position with (the global batch size)."""
        return (self.batch_size or 1) * self._data_parallel(world)[1]

    def rank_batches(self, padded_samples: int, world: World) -> int:
        """Device batches each rank runs in an epoch plan of ``padded_samples`` positions
        (the same on every rank; only the last may be short, with ``whole_batches=False``)."""
        per_rank = padded_samples // self._data_parallel(world)[1]
        return -(-per_rank // (self.batch_size or 1))

    def _data_parallel(self, world: World) -> tuple[int, int]:
        """(data-parallel rank, data-parallel world): with ``replication=r``, each group of r
        consecutive ranks (tensor/sequence parallel peers) reads the same samples."""
        if world.world_size % self.replication:
            raise ConfigError(
                f"{world.describe()}: world size {world.world_size} is not divisible by "
                f"replication={self.replication}."
            )
        return world.rank // self.replication, world.world_size // self.replication

    def fingerprint(self) -> str:
        """Identifies the sample space: a checkpoint only resumes on the same data."""
        text = json.dumps([self.shard_sizes.tolist(), self.samples_per_stream])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    # ------------------------------------------------------------------ planning

    def _space(self, epoch: int, stream: int | None = None) -> EpochSpace:
        return _space_cached(self, epoch, stream)

    def _stream_plan(
        self, epoch: int, stream: int | None, ncn: int, global_batch: int
    ) -> MappedPlan:
        space = self._space(epoch, stream)
        ncn = max(1, min(ncn, int(space.shard_sizes.sum()))) if stream is not None else ncn
        spec = PlanSpec(
            shard_sizes=tuple(space.shard_sizes.tolist()),
            num_canonical_nodes=ncn,
            global_batch=global_batch,
            seed=self.shuffle_seed,
            epoch=epoch,
            algorithm=self.shuffle_algo if self.shuffle else "none",
            block_size=self._shuffle_block_size or default_block_size(ncn),
        )
        return MappedPlan(_plan_cached(spec), space)

    def plan(
        self,
        epoch: int,
        world: World,
        *,
        num_canonical_nodes: int | None = None,
        global_batch: int | None = None,
    ) -> Dealing:
        """The order of ``epoch`` in global positions, answering in real sample ids."""
        ncn = num_canonical_nodes or self.num_canonical_nodes(world)
        g = global_batch or self.global_batch(world)
        if self.batching_method == "random":
            return self._stream_plan(epoch, None, ncn, g)
        streams = [i for i, count in enumerate(self.samples_per_stream) if count > 0]
        if self.batching_method == "stratified":
            quotas = stratified_quotas([self.samples_per_stream[i] for i in streams], g)
            subplans = [self._stream_plan(epoch, i, ncn, q) for i, q in zip(streams, quotas)]
            return StratifiedPlan(subplans, quotas, g)
        unit = g if self.batching_method == "per_stream" else (self.batch_size or 1)
        if g % unit:
            raise ConfigError(f"The global batch {g} is not a multiple of the device batch {unit}.")
        subplans = [self._stream_plan(epoch, i, ncn, unit) for i in streams]
        return UnitPlan(subplans, unit, g, self.shuffle_seed, epoch)

    def _epoch_plan(self, epoch: int, world: World) -> tuple[Dealing, int]:
        """The plan this world iterates for ``epoch`` and the position it starts at. A resume
        saved under another global batch size continues the saved plan, re-dealt (RebasedPlan)."""
        resume_epoch, offset, saved_batch = self._state.resume_point()
        if epoch != resume_epoch:
            return self.plan(epoch, world), 0
        current_batch = self.global_batch(world)
        if saved_batch in (0, current_batch):
            return self.plan(epoch, world), offset
        base = self.plan(epoch, world, global_batch=saved_batch)
        return RebasedPlan(base, offset, current_batch), 0

    def __len__(self) -> int:
        """Samples this rank yields per epoch (every rank yields the same number)."""
        world = detect_world()
        plan, _ = self._epoch_plan(self._state.current_epoch(), world)
        return plan.padded_samples // self._data_parallel(world)[1]

    # ------------------------------------------------------------------ reading

    @functools.cached_property
    def _largest_evictable_shard(self) -> int:
        return largest_footprint(self.streams, remote_only=True)

    def _check_cache_fits(self, world: World, main_reads: bool) -> None:
        """With a cache_limit, every process of the node that reads must be able to hold one
        shard and fetch the next: checked when an epoch starts, where the worker count is
        known. When workers send batch plans, the main process reads too."""
        if self.cache_limit is None or not self._largest_evictable_shard:
            return
        in_worker = get_worker_info() is not None
        main = in_worker and main_reads
        per_rank = (world.num_workers if in_worker else 1) + main
        if not in_worker:
            how = f"{world.local_world_size} rank(s), no loader workers"
        else:
            how = f"{world.local_world_size} rank(s) x ({world.num_workers} loader workers"
            how += " + the main process)" if main else ")"
        check_cache_fits(
            self.cache_limit,
            self._largest_evictable_shard,
            world.local_world_size * per_rank,
            how,
            world.describe(),
        )
        self._warn_if_cache_thrashes(world)

    def _shards_read_at_once(self, world: World) -> int:
        """Roughly how many shards this node's ranks read from at the same time: each of the
        node's canonical parts reads one shard at a time unshuffled or with py1s, the shards of
        one shuffle block with py1b/py1br/py1e, and all of its shards with naive."""
        total_shards = len(self.shard_sizes)
        ncn = self.num_canonical_nodes(world)
        parts = max(1, -(-ncn // max(1, world.num_nodes)))
        algo = self.shuffle_algo if self.shuffle else "none"
        if algo in ("none", "py1s"):
            per_part = 1
        elif algo == "naive":
            per_part = -(-total_shards // ncn)
        else:
            block = self._shuffle_block_size or default_block_size(ncn)
            per_shard = max(1.0, self.num_samples / max(1, total_shards))
            per_part = int(np.ceil(block / per_shard)) + 1
        return int(min(total_shards, parts * per_part))

    def _warn_if_cache_thrashes(self, world: World) -> None:
        """A cache smaller than what the shuffle reads at once still works, but re-fetches
        shards over and over (100x slower in the reliability measurements): say so once per
        process, with the settings that fit the cache."""
        if self.__dict__.get("_thrash_warned"):
            return
        assert self.cache_limit is not None
        holds = self.cache_limit // self._largest_evictable_shard
        wanted = self._shards_read_at_once(world)
        if wanted <= holds:
            return
        self.__dict__["_thrash_warned"] = True
        warnings.warn(
            f"{world.describe()}: cache_limit holds about {holds} shards but this shuffle "
            f"(shuffle_algo={self.shuffle_algo!r}, num_canonical_nodes="
            f"{self.num_canonical_nodes(world)}, shuffle_block_size="
            f"{self._shuffle_block_size or default_block_size(self.num_canonical_nodes(world))}) "
            f"reads from about {wanted} at once, so shards will be downloaded again and again. "
            "For a small cache use shuffle_algo='py1s' with num_canonical_nodes equal to the "
            "number of nodes, or a shuffle_block_size of a few shards; or raise cache_limit.",
            CacheThrashWarning,
            stacklevel=3,
        )

    def _shard_cache(self, world: World | None = None) -> ShardCache:
        """This process's cache handle (a forked worker makes its own: locks and maps are
        per process). The world is detected only when one is made, off the per-sample path."""
        if self._cache is None or self._cache_pid != os.getpid():
            who = (world or detect_world()).describe()
            self._cache = ShardCache(self.streams, self.cache_limit, who=who)
            self._cache_pid = os.getpid()
        return self._cache

    def locate(self, ids: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """(global shard index, index within shard) of real sample ids."""
        shards = np.searchsorted(self.shard_offsets, ids, side="right") - 1
        return shards, ids - self.shard_offsets[shards]

    def _ref(self, shard: int) -> ShardRef:
        """(stream, shard within it) of a global shard index; computed, not tabulated, so a
        process holds nothing per shard of the index."""
        firsts = self.__dict__.get("_stream_firsts")
        if firsts is None:
            firsts = self.__dict__["_stream_firsts"] = self.stream_first_shard[:-1].tolist()
        stream = bisect.bisect_right(firsts, shard) - 1
        return ShardRef(stream, shard - firsts[stream])

    def __getitem__(self, index: int) -> Any:
        """Sample ``index`` of the dataset (negative counts from the end), fetching its shard
        if needed. Goes through :meth:`get_item`, as in mosaicml-streaming, so a subclass may
        override either method to transform samples — iteration yields the same values."""
        if not -self.num_samples <= index < self.num_samples:
            raise IndexError(f"Sample {index} out of range for {self.num_samples} samples.")
        return self.get_item(index % self.num_samples)

    def get_item(self, index: int) -> Any:
        """The sample at ``index`` (0 <= index < size) as stored: a dict of column values.
        Subclasses override this (or ``__getitem__``) to decode or augment; call ``super()``
        for the stored sample."""
        return self._stored_item(index)

    @property
    def epoch(self) -> int:
        """The epoch this process is iterating (0 before any iteration). Subclasses seed
        per-sample augmentation with it and the sample index, so a resumed run — any worker
        count — augments every sample exactly as the uninterrupted run did."""
        return int(self.__dict__.get("_iterating_epoch", 0))

    @functools.cached_property
    def transforms_samples(self) -> bool:
        """Whether a subclass overrides ``__getitem__`` or ``get_item``: then every sample
        goes through them (per sample), and the batch fast paths, which build batches
        straight from stored bytes, are off."""
        cls = type(self)
        return (
            cls.__getitem__ is not StreamingDataset.__getitem__
            or cls.get_item is not StreamingDataset.get_item
        )

    def _stored_item(self, index: int) -> dict[str, Any]:
        shard = int(np.searchsorted(self.shard_offsets, index, side="right")) - 1
        while self.shard_sizes[shard] == 0:  # empty shards share their successor's start
            shard += 1
        within = index - int(self.shard_offsets[shard])
        if self.cache_limit is None:
            # Nothing is ever evicted: a shard whose decoder this process already built (it
            # exists only while the shard is open here) is read without lease bookkeeping.
            reader = self._shard_cache().open_reader(self._ref(shard))
            decode = getattr(reader, "_decoder", None)
            if decode is not None:
                return decode(within)  # type: ignore[no-any-return]
        cache = self._shard_cache()
        ref = self._ref(shard)
        try:
            return cache.ensure(ref)[within]
        finally:
            cache.release(ref)  # random access holds no lease between calls

    def _epoch_reader(self, main_reads: bool = False) -> tuple[EpochReader, int]:
        """Start this worker's share of the next epoch: (reader over its chunks, the device
        batch size its chunks are whole multiples of — but for the rank's last batch, which
        may be short with ``whole_batches=False``)."""
        world = detect_world()
        self._check_cache_fits(world, main_reads)
        epoch, _ = self._state.begin(world.worker)
        self.__dict__["_iterating_epoch"] = epoch
        plan, start = self._epoch_plan(epoch, world)
        dp_rank, dp_world = self._data_parallel(world)
        device = self.batch_size or 1
        ahead = self.predownload if self.predownload is not None else 8 * device
        positions = plan.worker_chunks(
            dp_rank,
            dp_world,
            world.worker,
            world.num_workers,
            start,
            max(1, max(ahead, 256) // device),
            batch=device,
        )
        chunks = (self.locate(plan.ids(chunk)) for chunk in positions)
        remote = any(stream.remote_root is not None for stream in self.streams)
        reader = EpochReader(
            self._shard_cache(world),
            self._ref,
            chunks,
            prefetch_threads=4 if ahead else 0,
            ranged=RangedReads(self.streams) if self.ranged_reads and remote and ahead else None,
        )
        return reader, device

    def __iter__(self) -> Iterator[Any]:
        reader, _ = self._epoch_reader()
        step = self._decode_batch_samples  # fixed by the streams: computed once
        try:
            if self.transforms_samples:
                # The subclass decides what a sample is; the reader still fetches ahead.
                starts = self.shard_offsets
                for shards, within in reader.chunks():
                    for index in (starts[shards] + within).tolist():
                        yield self[index]
                return
            for shards, within in reader.chunks():
                if not step:
                    yield from reader.stream(shards, within)
                    continue
                for begin in range(0, len(shards), step):
                    end = begin + step
                    yield from reader.samples(shards[begin:end], within[begin:end])
        finally:
            reader.close()

    @property
    def batchable(self) -> bool:
        """Whether :meth:`iter_batches` can build batches straight from shard bytes: every
        column of every stream is fixed-size and stacks (tokens, labels, fixed arrays), and
        no subclass transforms samples."""
        return not self.transforms_samples and all(
            shard.batchable for stream in self.streams for shard in stream.shards[:1]
        )

    def iter_batches(self) -> Iterator[dict[str, Any]]:
        """Like ``__iter__`` but yields this worker's device batches (``batch_size`` samples,
        the same samples in the same order) as dicts of stacked numpy arrays — what
        ``default_collate`` would build, without a Python object per sample. Used by
        :class:`~streaming_lightning.dataset.batches.BatchesView` for DataLoaders."""
        if not self.batchable:
            raise ConfigError(
                "iter_batches() needs every column fixed-size and stackable (numbers, "
                f"fixed-shape ndarrays); columns are {self.streams[0].columns()}."
            )
        reader, device = self._epoch_reader()
        try:
            for shards, within in reader.chunks():
                for begin in range(0, len(shards), device):
                    end = begin + device
                    yield reader.batch(shards[begin:end], within[begin:end])
        finally:
            reader.close()

    @property
    def reads_are_copies(self) -> bool:
        """Whether a sample is its stored bytes as they are (raw ``bytes`` columns and
        fixed-size numbers, no subclass transform). Then a worker has nothing to decode, and
        handing a batch's bytes to the main process (pickled through a pipe, or through a
        fresh shared-memory segment) costs more than reading them: a DataLoader's workers
        send :meth:`iter_batch_plans` instead, and the main process reads them with
        :meth:`read_samples` — one copy from the page cache, no shared memory."""
        return not self.transforms_samples and all(
            shard.decoding_is_copy for stream in self.streams for shard in stream.shards[:1]
        )

    def iter_batch_plans(self) -> Iterator[tuple[NDArray[np.int64], NDArray[np.int64]]]:
        """This worker's device batches as (global shard, index within shard) arrays — the
        same samples in the same order as :meth:`iter_batches` — each yielded once its shards
        are in the local cache (fetched ahead, as ``__iter__`` does)."""
        reader, device = self._epoch_reader(main_reads=True)
        try:
            for shards, within in reader.chunks():
                for begin in range(0, len(shards), device):
                    end = begin + device
                    reader.make_local(shards[begin:end])
                    yield shards[begin:end], within[begin:end]
        finally:
            reader.close()

    def read_samples(
        self, shards: NDArray[np.int64], within: NDArray[np.int64]
    ) -> list[dict[str, Any]]:
        """The stored samples at (global shard, index within shard) pairs, in that order,
        fetching any shard evicted since it was planned. No lease is held afterwards."""
        reader = self.__dict__.get("_plan_reader")
        if reader is None or reader.pid != os.getpid():
            reader = EpochReader(self._shard_cache(), self._ref, iter(()), prefetch_threads=0)
            self.__dict__["_plan_reader"] = reader
        return reader.samples(shards, within)

    @functools.cached_property
    def _decode_batch_samples(self) -> int:
        """How many samples to decode at once (0: one at a time). Fixed-size samples decode
        in groups per shard with a few numpy operations, up to 512 or ~256 KB at a time;
        variable-size ones gain little from grouping and are streamed one by one."""
        shards = [stream.shards[0] for stream in self.streams if stream.shards]
        if not all(shard.fixed_size_samples for shard in shards):
            return 0
        raw_bytes = sum(int(stream.shard_table.raw_bytes.sum()) for stream in self.streams)
        mean_bytes = max(1, raw_bytes // self.num_samples)
        return int(min(512, max(1, (256 << 10) // mean_bytes)))

    # ------------------------------------------------------------------ epochs and resume

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration run ``epoch`` from its start (DistributedSampler-style)."""
        self._state.set_next(int(epoch), 0)

    def state_dict(self, num_samples: int, from_beginning: bool) -> dict[str, Any]:
        """The resume point after ``num_samples`` samples of the current epoch (globally, all
        ranks together). ``from_beginning=False`` counts from the point this run resumed at."""
        world = detect_world()
        epoch = self._state.current_epoch()
        resume_epoch, resume_offset, saved_batch = self._state.resume_point()
        resumed_here = resume_epoch == epoch
        sample_in_epoch = (
            num_samples if from_beginning or not resumed_here else resume_offset + num_samples
        )
        # An epoch resumed under another global batch keeps counting in the saved plan.
        plan_batch = saved_batch if resumed_here and saved_batch else self.global_batch(world)
        return {
            "version": STATE_VERSION,
            "epoch": epoch,
            "sample_in_epoch": int(sample_in_epoch),
            "num_canonical_nodes": self.num_canonical_nodes(world),
            "shuffle_seed": self.shuffle_seed,
            "initial_physical_nodes": world.num_nodes,
            "global_batch_size": plan_batch,
            "fingerprint": self.fingerprint(),
        }

    def load_state_dict(self, obj: dict[str, Any]) -> None:
        """Resume: the next iteration yields exactly the samples not yet seen in that epoch."""
        missing = {"epoch", "sample_in_epoch"} - set(obj)
        if missing:
            raise ConfigError(f"Not a StreamingDataset state: missing {sorted(missing)}.")
        if obj.get("fingerprint") not in (None, self.fingerprint()):
            raise ConfigError(
                f"This checkpoint's data position belongs to a different dataset (fingerprint "
                f"{obj.get('fingerprint')}, this one's is {self.fingerprint()}: shard sizes or "
                "stream mix differ); it cannot be applied."
            )
        saved_batch = obj.get("global_batch_size")
        if saved_batch is not None and (not isinstance(saved_batch, int) or saved_batch < 1):
            raise ConfigError(f"Invalid global_batch_size {saved_batch!r} in the checkpoint state.")
        if obj.get("num_canonical_nodes"):
            self._num_canonical_nodes = int(obj["num_canonical_nodes"])
        if obj.get("shuffle_seed") is not None:
            self.shuffle_seed = int(obj["shuffle_seed"])
        self._state.set_next(int(obj["epoch"]), int(obj["sample_in_epoch"]), int(saved_batch or 0))


@functools.lru_cache(maxsize=8)
def _plan_cached(spec: PlanSpec) -> EpochPlan:
    return EpochPlan(spec)


def _space_cached(dataset: StreamingDataset, epoch: int, stream: int | None) -> EpochSpace:
    key = (epoch, stream)
    cache = dataset.__dict__.setdefault("_space_cache", {})
    if key not in cache:
        if any(k[0] != epoch for k in cache):
            cache.clear()
        cache[key] = build_space(
            [stream.shard_sizes for stream in dataset.streams],
            dataset.samples_per_stream,
            seed=dataset.shuffle_seed,
            epoch=epoch,
            sampling_method=dataset.sampling_method,
            granularity=dataset.sampling_granularity,
            streams=None if stream is None else [stream],
        )
    return cache[key]
