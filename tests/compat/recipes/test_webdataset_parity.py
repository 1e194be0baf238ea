"""The webdataset converter against webdataset itself: tars written by webdataset's own
``TarWriter`` convert to MDS whose samples equal, field for field and in order, what a
``wds.WebDataset(...).decode()`` pipeline yields from the same tars."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from recipes.common.convert import WriteOptions
from recipes.webdataset.convert import convert
from streaming_lightning import LocalDataset
from tests.conftest import require_peer


def test_samples_equal_a_decoding_webdataset_pipeline(tmp_path: Path) -> None:
    wds = require_peer("webdataset")
    urls = []
    for shard in range(2):
        path = tmp_path / "raw" / f"shard-{shard:06d}.tar"
        path.parent.mkdir(parents=True, exist_ok=True)
        with wds.TarWriter(str(path)) as sink:
            for i in range(shard * 20, shard * 20 + 20):
                sink.write(
                    {
                        "__key__": f"sample{i:05d}",
                        "jpg": b"\xff\xd8" + bytes([i]) * 30,
                        "cls": i % 10,
                        "txt": f"caption {i}",
                        "json": {"i": i, "odd": bool(i % 2)},
                        "npy": np.full((2, i % 3 + 1), i, np.int16),
                    }
                )
        urls.append(str(path))
    convert(str(tmp_path / "raw"), WriteOptions(out=str(tmp_path / "mds"), progress=False))
    ours = list(LocalDataset(str(tmp_path / "mds")))
    theirs = list(wds.WebDataset(urls, shardshuffle=False).decode())
    assert len(ours) == len(theirs) == 40
    for a, b in zip(ours, theirs):
        assert a["__key__"] == b["__key__"]
        for field in ("jpg", "cls", "txt", "json"):
            assert a[field] == b[field], field
        expected: Any = b["npy"]
        assert a["npy"].dtype == expected.dtype and np.array_equal(a["npy"], expected)
