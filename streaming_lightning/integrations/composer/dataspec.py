"""A Composer ``DataSpec`` over a StreamingDataset: the loader Composer checkpoints and resumes
through the dataset's ``state_dict(num_samples, from_beginning)`` / ``load_state_dict``.

Composer finds the dataset as ``dataloader.dataset``; here that is a :class:`ResumeView`, which
iterates device batches like :class:`~streaming_lightning.dataset.batches.BatchesLoader`,
refuses a checkpoint taken on other data with an error that names both datasets, and makes a
checkpoint taken after an epoch ended resume at the next epoch.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch

from streaming_lightning.dataset import Stream, StreamingDataset
from streaming_lightning.dataset.batches import BatchesLoader, BatchesView
from streaming_lightning.dataset.world import detect_world
from streaming_lightning.errors import ConfigError


class DatasetMismatchError(ConfigError):
    """A checkpoint's data position belongs to another dataset or another global batch size."""


def describe(dataset: StreamingDataset) -> str:
    streams = ", ".join(stream.describe() for stream in dataset.streams)
    return f"[{streams}] (fingerprint {dataset.fingerprint()})"


def check_fingerprint(saved: Mapping[str, Any] | None, dataset: StreamingDataset) -> None:
    """Raise unless ``saved`` (a dataset state from a checkpoint) was taken on ``dataset``."""
    if saved is None:
        raise DatasetMismatchError(
            "The checkpoint holds no train data position (its train dataset had no state_dict), "
            f"so this run on {describe(dataset)} cannot continue mid-epoch where it stopped. "
            "Resume from a checkpoint written with this dataset, or load only the weights "
            "(load_weights_only=True)."
        )
    theirs = saved.get("fingerprint")
    if theirs is not None and theirs != dataset.fingerprint():
        raise DatasetMismatchError(
            f"The checkpoint's train data position was saved on a dataset with fingerprint "
            f"{theirs} (global batch {saved.get('global_batch_size')}), but this run trains on "
            f"{describe(dataset)}: their shard sizes or stream mix differ, so the position "
            "cannot be applied. Resume with the dataset the checkpoint was trained on, or start "
            "without load_path/autoresume."
        )


class ResumeView(BatchesView):
    """The dataset Composer sees: device batches of a StreamingDataset.

    - ``load_state_dict`` first checks the checkpoint was taken on the same data;
    - ``state_dict`` names the next epoch in a checkpoint taken after an epoch ended (Composer
      then counts 0 samples into the next epoch, while the dataset still names the one it
      iterated; resuming that would replay the whole epoch — and ``"1ep"`` is Composer's
      default ``save_interval``).
    """

    iterated_epoch: int | None = None  # set by ComposerLoader once an epoch's iteration began

    def iteration_began(self) -> None:
        self.iterated_epoch = int(self.dataset.state_dict(0, True)["epoch"])

    def state_dict(self, num_samples: int, from_beginning: bool) -> dict[str, Any]:
        state = self.dataset.state_dict(num_samples, from_beginning)
        if num_samples == 0 and from_beginning and state["epoch"] == self.iterated_epoch:
            state.update(
                epoch=state["epoch"] + 1,
                sample_in_epoch=0,
                global_batch_size=self.dataset.global_batch(detect_world()),
            )
        return state

    def load_state_dict(self, obj: dict[str, Any] | None) -> None:
        check_fingerprint(obj, self.dataset)
        assert obj is not None
        self.dataset.load_state_dict(obj)
        self.iterated_epoch = None


class ComposerLoader(BatchesLoader):
    """:class:`BatchesLoader` (same batches as ``DataLoader(dataset, batch_size=...)``) whose
    ``.dataset`` is a :class:`ResumeView` and whose ``batch_size`` is the device batch, which
    Composer reads for its default ``device_train_microbatch_size``."""

    view_class = ResumeView

    @property  # type: ignore[override]
    def batch_size(self) -> int | None:
        return self.streaming_dataset.batch_size

    @batch_size.setter
    def batch_size(self, value: int | None) -> None:
        """DataLoader's own (None: the view yields whole batches; see ``__len__``)."""

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[dict[str, Any]]:  # type: ignore[override]
        # Composer takes ``islice(loader, len(loader))``: the generator may never finish, so
        # the epoch is noted at the first batch (or at the end of an empty, resumed epoch).
        view = self.dataset
        assert isinstance(view, ResumeView)
        began = False
        for batch in super().__iter__():
            if not began:
                view.iteration_began()
                began = True
            yield batch
        if not began:
            view.iteration_began()


class CountSamples:
    """Samples in a batch (a dict of columns): the length of its first column."""

    def __call__(self, batch: Mapping[str, Any]) -> int:
        if not isinstance(batch, Mapping) or not batch:
            raise ConfigError(f"Expected a batch dict of columns, got {type(batch).__name__}.")
        first = next(iter(batch.values()))
        return int(first.shape[0]) if hasattr(first, "shape") else len(first)


class CountTokens:
    """Tokens in a batch: the number of elements of ``column`` (token ids), summed over its
    samples (a tensor's ``numel``, or the lengths of a list of sequences)."""

    def __init__(self, column: str) -> None:
        self.column = column

    def __call__(self, batch: Mapping[str, Any]) -> int:
        if self.column not in batch:
            raise ConfigError(
                f"token_column={self.column!r} is not in the batch; its columns are "
                f"{sorted(batch)}."
            )
        value = batch[self.column]
        if isinstance(value, torch.Tensor):
            return int(value.numel())
        return int(sum(len(item) for item in value))


def to_plain(config: Any) -> Any:
    """A dict/list config (OmegaConf containers included) as plain Python values."""
    if type(config).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        return OmegaConf.to_container(config, resolve=True)
    return config


def dataset_from_config(config: Mapping[str, Any], batch_size: int) -> StreamingDataset:
    """A StreamingDataset from its constructor's keyword arguments; ``streams`` may be a list
    of Stream kwargs or a mapping of name to Stream kwargs (llm-foundry style)."""
    kwargs = dict(to_plain(config))
    given = kwargs.pop("batch_size", None)
    if given is not None and given != batch_size:
        raise ConfigError(
            f"The dataset config says batch_size={given} but build_dataspec got "
            f"batch_size={batch_size}; they must agree (the per-device batch size)."
        )
    streams = kwargs.pop("streams", None)
    if isinstance(streams, Mapping):
        streams = list(streams.values())
    if streams is not None:
        if not isinstance(streams, Sequence):
            raise ConfigError(f"streams must be a list or mapping of stream configs: {streams!r}")
        kwargs["streams"] = [s if isinstance(s, Stream) else Stream(**dict(s)) for s in streams]
    return StreamingDataset(batch_size=batch_size, **kwargs)


def build_dataspec(
    dataset: StreamingDataset | Mapping[str, Any],
    batch_size: int | None = None,
    *,
    num_workers: int = 0,
    token_column: str | None = None,
    loader_kwargs: Mapping[str, Any] | None = None,
    **dataspec_kwargs: Any,
) -> Any:
    """A ``composer.core.DataSpec`` for a StreamingDataset (or the config of one).

    ``batch_size`` is the per-device batch (the dataset's own ``batch_size`` when omitted).
    ``num_samples`` is the epoch across all ranks, padding included. With ``token_column``,
    Composer counts tokens as the elements of that column (e.g. token ids). ``loader_kwargs``
    go to the DataLoader (pin_memory, persistent_workers, prefetch_factor, ...);
    ``dataspec_kwargs`` to the DataSpec (batch_transforms, split_batch, ...).
    """
    from composer.core import DataSpec

    if isinstance(dataset, StreamingDataset):
        if batch_size is not None and dataset.batch_size not in (None, batch_size):
            raise ConfigError(
                f"The dataset has batch_size={dataset.batch_size} but build_dataspec got "
                f"batch_size={batch_size}; they must agree (the per-device batch size)."
            )
        if batch_size is not None:
            dataset.batch_size = batch_size
        if not dataset.batch_size:
            raise ConfigError("build_dataspec needs batch_size= (the per-device batch size).")
    else:
        if batch_size is None:
            batch_size = to_plain(dataset).get("batch_size")
        if not batch_size:
            raise ConfigError("build_dataspec needs batch_size= (the per-device batch size).")
        dataset = dataset_from_config(dataset, batch_size)
    loader = ComposerLoader(dataset, num_workers=num_workers, **dict(loader_kwargs or {}))
    assert dataset.batch_size
    data_parallel = dataset.batch_span(detect_world()) // dataset.batch_size
    dataspec_kwargs.setdefault("num_samples", len(dataset) * data_parallel)
    dataspec_kwargs.setdefault("get_num_samples_in_batch", CountSamples())
    if token_column is not None:
        dataspec_kwargs.setdefault("get_num_tokens_in_batch", CountTokens(token_column))
    return DataSpec(loader, **dataspec_kwargs)
