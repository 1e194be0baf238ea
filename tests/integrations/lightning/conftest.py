from __future__ import annotations

from pathlib import Path

import pytest

from tests.integrations.lightning.helpers import dataset_order, write_dataset


@pytest.fixture(scope="session")
def data(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_dataset(tmp_path_factory.mktemp("lightning-data") / "ds")


@pytest.fixture(scope="session")
def order(data: str) -> list[list[list[int]]]:
    """Global batches of epochs 0-3 as the dataset deals them: what training must see."""
    return dataset_order(data, 4)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "run"
