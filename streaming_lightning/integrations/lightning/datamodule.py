"""StreamingDataModule: a LightningDataModule built from StreamingDataset configs.

Datasets are created in ``setup()``, on every rank, after the trainer's strategy has placed the
process in the job; loaders get the trainer's rank and world (no RANK/WORLD_SIZE to export by
hand) and the per-device ``batch_size``, so the epoch plan deals global batches of
``batch_size x ranks``.

The training data position is saved twice in a checkpoint: by Lightning's fit loop (the train
loader is stateful) and by this module's ``state_dict``. The second copy is what makes resume
robust: Lightning restores a DataModule before the model configures its optimizers, so when
``configure_optimizers`` builds the train loader early (``trainer.estimated_stepping_batches``,
Lightning bug #20550: the fit loop then never hands the loader its state) the loader is created
with the position already loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import lightning.pytorch as pl

from streaming_lightning.dataset import Stream, StreamingDataset, World
from streaming_lightning.errors import ConfigError
from streaming_lightning.integrations.lightning.dataloader import StreamingDataLoader
from streaming_lightning.integrations.lightning.state import check_same_data

#: A StreamingDataset, or a dict / OmegaConf DictConfig of its constructor's arguments.
DatasetConfig = Any
SPLITS = ("train", "val", "test", "predict")
_STAGE_SPLITS = {
    "fit": ("train", "val"),
    "validate": ("val",),
    "test": ("test",),
    "predict": ("predict",),
}


def _as_dict(config: Any, split: str) -> dict[str, Any]:
    if isinstance(config, Mapping):
        return dict(config)
    try:
        from omegaconf import DictConfig, OmegaConf
    except ImportError:  # omegaconf is a dependency; this only guards odd installs
        DictConfig = ()  # type: ignore[assignment,misc]
    if isinstance(config, DictConfig):
        container = OmegaConf.to_container(config, resolve=True)
        assert isinstance(container, dict)
        return {str(key): value for key, value in container.items()}
    raise ConfigError(
        f"The {split} dataset config must be a StreamingDataset, a dict or an OmegaConf "
        f"DictConfig of StreamingDataset arguments; got {type(config).__name__}."
    )


def build_dataset(
    config: DatasetConfig,
    batch_size: int,
    split: str,
    dataset_class: type[StreamingDataset] = StreamingDataset,
) -> StreamingDataset:
    """A ``dataset_class`` (a StreamingDataset subclass, e.g. a recipe's) from a config (a
    ready dataset is returned as it is). A config's own ``batch_size`` overrides the module's
    for that split. Splits other than ``train`` default to ``whole_batches=False``: a metric
    over them counts each sample once, instead of the up to global-batch − 1 repeats that
    keep training ranks in step."""
    if isinstance(config, StreamingDataset):
        return config
    kwargs = _as_dict(config, split)
    kwargs.setdefault("batch_size", batch_size)
    if split != "train":
        kwargs.setdefault("whole_batches", False)
    if kwargs.get("streams") is not None:
        kwargs["streams"] = [
            stream if isinstance(stream, Stream) else Stream(**_as_dict(stream, split))
            for stream in kwargs["streams"]
        ]
    try:
        return dataset_class(**kwargs)
    except TypeError as error:
        raise ConfigError(f"Invalid {split} dataset config {sorted(kwargs)}: {error}") from None


class StreamingDataModule(pl.LightningDataModule):
    """Train/val/test/predict StreamingDatasets and their loaders, resumable mid-epoch.

    Each split is a StreamingDataset, or a dict / OmegaConf config of the arguments of
    ``dataset_class`` (``streams`` may be a list of Stream argument dicts). Loader arguments apply to every split;
    ``loader_kwargs`` passes any other DataLoader argument (``multiprocessing_context``,
    ``timeout``, ``worker_init_fn`` ...).
    """

    def __init__(
        self,
        train: DatasetConfig | None = None,
        val: DatasetConfig | None = None,
        test: DatasetConfig | None = None,
        predict: DatasetConfig | None = None,
        *,
        batch_size: int,
        num_workers: int = 0,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        prefetch_factor: int | None = None,
        loader_kwargs: Mapping[str, Any] | None = None,
        dataset_class: type[StreamingDataset] = StreamingDataset,
    ) -> None:
        super().__init__()
        if not (isinstance(dataset_class, type) and issubclass(dataset_class, StreamingDataset)):
            raise ConfigError(
                f"dataset_class must be StreamingDataset or a subclass, got {dataset_class!r}."
            )
        self.dataset_class = dataset_class
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}.")
        if persistent_workers and num_workers == 0:
            raise ConfigError("persistent_workers=True needs num_workers > 0.")
        self.configs: dict[str, DatasetConfig | None] = dict(
            zip(SPLITS, (train, val, test, predict))
        )
        self.batch_size = batch_size
        self.loader_kwargs: dict[str, Any] = {
            "num_workers": num_workers,
            "collate_fn": collate_fn,
            "pin_memory": pin_memory,
            "persistent_workers": persistent_workers,
        }
        if prefetch_factor is not None:
            self.loader_kwargs["prefetch_factor"] = prefetch_factor
        self.loader_kwargs.update(loader_kwargs or {})
        self.datasets: dict[str, StreamingDataset] = {}
        self.world: World | None = None
        self._train_loader: StreamingDataLoader | None = None
        self._train_state: dict[str, Any] | None = None

    # ------------------------------------------------------------------ Lightning hooks

    def setup(self, stage: str | None = None) -> None:
        self.world = self._trainer_world()
        for split in _STAGE_SPLITS.get(stage, SPLITS) if stage is not None else SPLITS:
            self._dataset(split, required=False)

    def train_dataloader(self) -> StreamingDataLoader:
        loader = self._loader("train")
        if self._train_state is not None:
            loader.load_state_dict(self._train_state)
            self._train_state = None
        self._train_loader = loader
        return loader

    def val_dataloader(self) -> StreamingDataLoader:
        return self._loader("val")

    def test_dataloader(self) -> StreamingDataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> StreamingDataLoader:
        return self._loader("predict")

    def state_dict(self) -> dict[str, Any]:
        if self._train_loader is not None:
            return {"train": self._train_loader.state_dict()}
        if self._train_state is not None:
            return {"train": dict(self._train_state)}
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Hold the training position for the next train loader; an existing one (built before
        the restore) takes it now and applies it when its next iteration starts."""
        train = state_dict.get("train")
        if train is None:
            return
        if self._train_loader is not None:
            self._train_loader.load_state_dict(train)
        else:
            dataset = self.datasets.get("train")
            if dataset is not None:  # fail at restore time, not at the first batch
                check_same_data(train, dataset)
            self._train_state = dict(train)

    # ------------------------------------------------------------------ helpers

    def _trainer_world(self) -> World | None:
        trainer = self.trainer
        if trainer is None:
            return None
        world_size, nodes = int(trainer.world_size), max(1, int(trainer.num_nodes))
        if world_size % nodes:
            raise ConfigError(
                f"The trainer's world size {world_size} is not a multiple of its {nodes} nodes."
            )
        local = world_size // nodes
        return World(
            rank=int(trainer.global_rank),
            world_size=world_size,
            local_rank=int(trainer.local_rank),
            local_world_size=local,
        )

    def _dataset(self, split: str, required: bool = True) -> StreamingDataset | None:
        if split not in self.datasets:
            config = self.configs[split]
            if config is None:
                if required:
                    raise ConfigError(f"StreamingDataModule has no {split} dataset configured.")
                return None
            self.datasets[split] = build_dataset(config, self.batch_size, split, self.dataset_class)
        return self.datasets[split]

    def _loader(self, split: str) -> StreamingDataLoader:
        dataset = self._dataset(split)
        assert dataset is not None
        return StreamingDataLoader(
            dataset,
            batch_size=dataset.batch_size or self.batch_size,
            world=self.world,
            epoch_source=self._trainer_epoch if self.trainer is not None else None,
            **self.loader_kwargs,
        )

    def _trainer_epoch(self) -> int:
        trainer = self.trainer
        return int(trainer.current_epoch) if trainer is not None else 0
