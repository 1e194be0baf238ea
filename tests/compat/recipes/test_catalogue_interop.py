"""The catalogue recipes against mosaicml-streaming 0.13's own code: EnWiki and Pile datasets
equal what its converters write from the same raw files, and its ``StreamingADE20K`` and
``StreamingCOCO`` read what our ADE20K and COCO converters write."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from recipes.common.convert import WriteOptions
from streaming_lightning import StreamingDataset
from tests.conftest import require_peer


def _ours(root: Path) -> list[dict[str, object]]:
    dataset = StreamingDataset(local=str(root))
    return [dataset[i] for i in range(dataset.size)]


def test_enwiki_text_equals_mosaicml_streaming_conversion(tmp_path: Path) -> None:
    require_peer("streaming")
    from streaming.text.convert.enwiki_text import process_split

    from recipes.enwiki.convert import convert, find_files
    from recipes.enwiki.fixtures import write_raw

    raw = write_raw(str(tmp_path / "raw"), parts=2, articles_per_part=25)
    convert(raw, WriteOptions(out=str(tmp_path / "ours"), progress=False))
    for split, paths in find_files(raw).items():
        basenames = [Path(p).name for p in paths]
        process_split(raw, str(tmp_path / "theirs"), "", [], 1 << 25, 0, 0, basenames, split)
        assert _ours(tmp_path / "ours" / split) == _ours(tmp_path / "theirs" / split)


def test_pile_subsets_equal_mosaicml_streaming_conversion(tmp_path: Path) -> None:
    require_peer("streaming")
    from streaming.text.convert.pile import file_to_dir

    from recipes.pile.convert import convert
    from recipes.pile.fixtures import write_raw
    from recipes.pile.subsets import slug

    raw = write_raw(str(tmp_path / "raw"), train_files=1, docs_per_file=80, compress=False)
    convert(raw, WriteOptions(out=str(tmp_path / "ours"), progress=False))
    source = str(Path(raw) / "train" / "00.jsonl")
    counts = file_to_dir((source, str(tmp_path / "theirs"), "", [], 1 << 27))
    theirs = _ours(tmp_path / "theirs")
    assert len(theirs) == sum(counts.values()) == 80
    for name, count in counts.items():
        mine = _ours(tmp_path / "ours" / "train" / slug(name))
        assert mine == [s for s in theirs if s["pile_set_name"] == name] and len(mine) == count


def test_mosaicml_streaming_reads_our_ade20k(tmp_path: Path) -> None:
    require_peer("streaming")
    from streaming.vision import StreamingADE20K

    from recipes.ade20k.convert import convert
    from recipes.ade20k.fixtures import write_raw

    raw = write_raw(str(tmp_path / "raw"), train=6, val=2)
    convert(raw, WriteOptions(out=str(tmp_path / "mds"), progress=False))
    theirs = StreamingADE20K(local=str(tmp_path / "mds"), split="train", shuffle=False)
    folder = Path(raw)  # the ADEChallengeData2016 folder
    images = sorted((folder / "images" / "training").glob("*.jpg"))
    assert theirs.num_samples == len(images) == 6
    for i, path in enumerate(images):
        image, mask = theirs[i]
        annotation = folder / "annotations" / "training" / (path.stem + ".png")
        assert np.array_equal(np.asarray(image), np.asarray(Image.open(path)))
        assert np.array_equal(np.asarray(mask), np.asarray(Image.open(annotation)))


def test_mosaicml_streaming_reads_our_coco(tmp_path: Path) -> None:
    require_peer("streaming")
    from streaming.vision import StreamingCOCO

    from recipes.coco.convert import convert
    from recipes.coco.fixtures import write_raw

    raw = write_raw(str(tmp_path / "raw"), train=10, val=4)
    convert(raw, WriteOptions(out=str(tmp_path / "mds"), progress=False))
    annotations = json.loads((Path(raw) / "annotations" / "instances_val2017.json").read_text())
    boxed = sorted({a["image_id"] for a in annotations["annotations"]})
    sizes = {i["id"]: (i["height"], i["width"]) for i in annotations["images"]}
    theirs = StreamingCOCO(local=str(tmp_path / "mds"), split="val", shuffle=False)
    assert theirs.num_samples == len(boxed)  # images without boxes skipped, as theirs does
    for i, image_id in enumerate(boxed):
        image, got_id, size, boxes, labels = theirs[i]
        assert got_id == image_id and size == sizes[image_id]
        assert image.size == (sizes[image_id][1], sizes[image_id][0])
        count = sum(a["image_id"] == image_id for a in annotations["annotations"])
        assert boxes.shape == (count, 4) and labels.shape == (count,)
        assert ((labels >= 1) & (labels <= 80)).all()
