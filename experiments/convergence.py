"""Experiment 2 — equal convergence: does streaming's shuffle train as well as full shuffling?

Real data that ships with scikit-learn (the 1,797 8x8 handwritten digits; no download) is split
into a stratified test set and a training set written to MDS *sorted by class*, the way
folder-per-class datasets such as ImageNet arrive. A small CNN is trained for a fixed budget
with five seeds under each data order: our StreamingDataset with each shuffle algorithm and
block size, a map-style dataset with full random shuffling (the "local disk" baseline), a
webdataset pipeline (shard shuffle + its default 1,000-sample buffer) over tars of the same
shards, and no shuffling (the control that shows order matters). Reported: top-1 mean ± std
and the shuffle-quality measures of each method's first epoch.

At this size the default ``shuffle_block_size`` (262,144) exceeds the dataset, so ``py1e`` with
default settings is a full shuffle. The 256-sample block keeps the ratio of block to dataset of
a one-node ImageNet run (262,144 / 1.28M is about 0.2) but holds only 3-6 of the 10 classes
(an ImageNet block holds about 200 of 1,000 classes, 90 epochs smooth the drift), so it is a much
harder case than ImageNet: it shows what too small a block does to class-sorted data. The
64-sample block (about 1.5 shards) is the extreme.
"""

from __future__ import annotations

import io
import itertools
import random
import statistics
import tarfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from streaming_lightning import MDSWriter
from streaming_lightning.dataset import StreamingDataset
from streaming_lightning.dataset.shuffle import shuffle_quality


@dataclass(frozen=True)
class Method:
    name: str
    kind: str  # "streaming" | "map" | "webdataset"
    shuffle: bool = True
    algo: str = "py1e"
    block: int | None = None


METHODS = [
    Method("ours: py1e (default)", "streaming"),
    Method("ours: py1e, block 256", "streaming", block=256),
    Method("ours: py1e, block 64", "streaming", block=64),
    Method("ours: py1b, block 256", "streaming", algo="py1b", block=256),
    Method("ours: py1br, block 256", "streaming", algo="py1br", block=256),
    Method("ours: py1s", "streaming", algo="py1s"),
    Method("ours: naive", "streaming", algo="naive"),
    Method("map-style, full shuffle", "map"),
    Method("webdataset (shards + 1000 buffer)", "webdataset"),
    Method("no shuffle (control)", "streaming", shuffle=False),
]
DEFAULT, BASELINE = METHODS[0].name, "map-style, full shuffle"
QUICK = {
    DEFAULT,
    "ours: py1e, block 64",
    BASELINE,
    "webdataset (shards + 1000 buffer)",
    "no shuffle (control)",
}
#: webdataset's own defaults: shardshuffle=True means 100, .shuffle()'s bufsize is 1000.
WDS_SHARD_BUFFER, WDS_SAMPLE_BUFFER = 100, 1000


def settings(quick: bool) -> dict[str, Any]:
    return {
        "seeds": [0, 1, 2, 3, 4],
        "epochs": 3,
        "batch_size": 32,
        "lr": 0.02,
        "samples_per_shard": 45,
        "test_fraction": 0.2,
        "split_seed": 0,
        "quality_window": 32,
        "quality_min_shards": 8,
        "methods": [m.name for m in METHODS if not quick or m.name in QUICK],
    }


# ---------------------------------------------------------------------------- data


@dataclass
class Data:
    train_x: np.ndarray  # uint8 (n, 64), sorted by class
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    mds: str
    tars: list[str]
    shard_sizes: list[int]


def load_digits_sorted(meta: dict[str, Any], work: Path) -> Data:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = digits.data.astype(np.uint8)  # 0..16
    y = digits.target.astype(np.int64)
    rng = np.random.default_rng(meta["split_seed"])
    test = np.zeros(len(y), bool)
    for label in np.unique(y):  # stratified: the same fraction of every class
        members = np.flatnonzero(y == label)
        test[rng.choice(members, round(len(members) * meta["test_fraction"]), False)] = True
    train = np.flatnonzero(~test)
    train = train[np.argsort(y[train], kind="stable")]  # sorted by class, like class folders
    data = Data(x[train], y[train], x[test], y[test], str(work / "mds"), [], [])
    per_shard = meta["samples_per_shard"]
    columns = {"x": "ndarray:uint8:64", "y": "int", "id": "int"}
    # Count-based shard cut: every shard (MDS and tar alike) holds the same samples.
    with MDSWriter(out=data.mds, columns=columns, size_limit=per_shard * 92) as writer:
        for i in range(len(train)):
            writer.write({"x": data.train_x[i], "y": int(data.train_y[i]), "id": i})
    data.shard_sizes = [int(s) for s in StreamingDataset(local=data.mds).shard_sizes]
    starts = np.concatenate([[0], np.cumsum(data.shard_sizes)])
    for shard, (lo, hi) in enumerate(itertools.pairwise(starts)):
        path = work / "tars" / f"shard-{shard:06d}.tar"
        path.parent.mkdir(exist_ok=True)
        write_tar(path, data, range(int(lo), int(hi)))
        data.tars.append(str(path))
    return data


def write_tar(path: Path, data: Data, ids: range) -> None:
    """A webdataset shard: members ``<key>.npy`` and ``<key>.cls`` per sample, key = id."""
    with tarfile.open(path, "w") as tar:
        for i in ids:
            buffer = io.BytesIO()
            np.save(buffer, data.train_x[i])
            for name, payload in (("npy", buffer.getvalue()), ("cls", b"%d" % data.train_y[i])):
                info = tarfile.TarInfo(f"{i:06d}.{name}")
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))


# ---------------------------------------------------------------------------- orders


Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def streaming_epochs(method: Method, seed: int, meta: dict[str, Any], data: Data) -> Any:
    dataset = StreamingDataset(
        local=data.mds,
        shuffle=method.shuffle,
        shuffle_algo=method.algo,
        shuffle_seed=seed,
        shuffle_block_size=method.block,
        batch_size=meta["batch_size"],
    )
    loader = DataLoader(dataset, batch_size=meta["batch_size"], num_workers=0)

    def epoch(number: int) -> Iterator[Batch]:
        dataset.set_epoch(number)
        for batch in loader:
            yield batch["x"], batch["y"], batch["id"]

    return epoch


def map_epochs(seed: int, meta: dict[str, Any], data: Data) -> Any:
    ids = torch.arange(len(data.train_y))
    dataset = TensorDataset(torch.from_numpy(data.train_x), torch.from_numpy(data.train_y), ids)
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(dataset, batch_size=meta["batch_size"], shuffle=True, generator=generator)

    def epoch(number: int) -> Iterator[Batch]:
        yield from loader

    return epoch


def webdataset_epochs(seed: int, meta: dict[str, Any], data: Data) -> Any:
    import webdataset as wds

    def epoch(number: int) -> Iterator[Batch]:
        # A fresh seed per epoch, as webdataset's default time-based seeding would give.
        pipeline = (
            wds.WebDataset(
                data.tars,
                shardshuffle=WDS_SHARD_BUFFER,
                seed=seed * 1000 + number,
                nodesplitter=None,
                empty_check=False,
            )
            .decode()
            .shuffle(WDS_SAMPLE_BUFFER, seed=seed * 1000 + number)
            .map(lambda s: (torch.from_numpy(s["npy"]), int(s["cls"]), int(s["__key__"])))
        )
        loader = DataLoader(pipeline, batch_size=meta["batch_size"], num_workers=0)
        yield from loader

    return epoch


def epochs_for(method: Method, seed: int, meta: dict[str, Any], data: Data) -> Any:
    if method.kind == "streaming":
        return streaming_epochs(method, seed, meta, data)
    if method.kind == "map":
        return map_epochs(seed, meta, data)
    return webdataset_epochs(seed, meta, data)


# ---------------------------------------------------------------------------- training


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 10),
    )


def as_images(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(-1, 1, 8, 8).float() / 16.0


def train(method: Method, seed: int, meta: dict[str, Any], data: Data) -> dict[str, Any]:
    torch.manual_seed(seed)
    random.seed(seed)
    model = cnn()
    optimizer = torch.optim.SGD(model.parameters(), lr=meta["lr"], momentum=0.9)
    epochs = epochs_for(method, seed, meta, data)
    first_epoch: list[int] = []
    for number in range(meta["epochs"]):
        for x, y, ids in epochs(number):
            if number == 0:
                first_epoch.extend(int(i) for i in ids)
            loss = nn.functional.cross_entropy(model(as_images(x)), torch.as_tensor(y))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        logits = model(as_images(torch.from_numpy(data.test_x)))
    top1 = float((logits.argmax(1).numpy() == data.test_y).mean())
    return {"top1": top1, "first_epoch": first_epoch}


def run(quick: bool, work: Path) -> dict[str, Any]:
    torch.set_num_threads(1)
    meta = settings(quick)
    data = load_digits_sorted(meta, work)
    meta.update(
        train_samples=len(data.train_y),
        test_samples=len(data.test_y),
        shards=len(data.shard_sizes),
    )
    methods: dict[str, Any] = {}
    for method in METHODS:
        if method.name not in meta["methods"]:
            continue
        runs = [train(method, seed, meta, data) for seed in meta["seeds"]]
        top1 = [r["top1"] for r in runs]
        quality = shuffle_quality(
            runs[0]["first_epoch"],
            data.shard_sizes,
            window=meta["quality_window"],
            min_shards=meta["quality_min_shards"],
        )
        first = np.asarray(runs[0]["first_epoch"][: len(data.train_y)])
        per_batch = first[: len(first) // meta["batch_size"] * meta["batch_size"]]
        classes = data.train_y[per_batch].reshape(-1, meta["batch_size"])
        methods[method.name] = {
            **asdict(method),
            "top1": top1,
            "mean": statistics.mean(top1),
            "std": statistics.stdev(top1),
            "quality": asdict(quality),
            "classes_per_batch": float(np.mean([len(np.unique(row)) for row in classes])),
        }
        print(f"  {method.name}: top-1 {methods[method.name]['mean']:.4f}", flush=True)
    default, baseline = methods[DEFAULT], methods[BASELINE]
    return {
        "meta": meta,
        "methods": methods,
        "difference": default["mean"] - baseline["mean"],
        "claim_holds": abs(default["mean"] - baseline["mean"]) <= baseline["std"],
    }


# ---------------------------------------------------------------------------- report


def plot(results: dict[str, Any], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = results["methods"]
    names = list(methods)
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(names) + 1.8))
    for row, name in enumerate(names):
        data = methods[name]
        color = (
            "tab:blue"
            if data["kind"] == "streaming" and data["shuffle"]
            else "tab:grey"
            if not data["shuffle"]
            else "tab:orange"
        )
        ax.scatter(
            np.array(data["top1"]) * 100, [row] * len(data["top1"]), s=12, color=color, alpha=0.5
        )
        ax.errorbar(
            data["mean"] * 100, row, xerr=data["std"] * 100, fmt="o", color=color, capsize=4
        )
    base = methods[BASELINE]
    ax.axvspan(
        (base["mean"] - base["std"]) * 100,
        (base["mean"] + base["std"]) * 100,
        color="tab:orange",
        alpha=0.12,
        label="full-shuffle baseline, mean ± 1 std",
    )
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("test top-1 accuracy (%), dots = seeds, bars = mean ± std")
    meta = results["meta"]
    ax.set_title(
        f"Digits sorted by class, small CNN, {meta['epochs']} epochs, "
        f"{len(meta['seeds'])} seeds per method"
    )
    ax.legend(fontsize=8, loc=(0.4, 0.3))  # a middle band no method's seeds reach
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def headline(results: dict[str, Any]) -> str:
    methods = results["methods"]
    ours, base = methods[DEFAULT], methods[BASELINE]
    control = methods["no shuffle (control)"]
    verdict = "within" if results["claim_holds"] else "NOT within"
    return (
        f"On class-sorted data, our default shuffle reaches {ours['mean']:.2%} ± "
        f"{ours['std']:.2%} top-1 against {base['mean']:.2%} ± {base['std']:.2%} for full "
        f"random shuffling ({verdict} one standard deviation; {len(results['meta']['seeds'])} "
        f"seeds), while not shuffling gives {control['mean']:.2%}."
    )


def summary(results: dict[str, Any]) -> str:
    meta = results["meta"]
    rows = [
        "| method | top-1 mean ± std | seeds | neighbour distance | shard mixing | classes per "
        "batch |",
        "|---|---|---|---|---|---|",
    ]
    for name, data in results["methods"].items():
        quality = data["quality"]
        runs = ", ".join(f"{v:.3f}" for v in data["top1"])
        rows.append(
            f"| {name} | {data['mean']:.2%} ± {data['std']:.2%} | {runs} "
            f"| {quality['neighbour_distance']:.3f} | {quality['shard_mixing']:.2f} "
            f"| {data['classes_per_batch']:.1f} |"
        )
    verdict = "holds" if results["claim_holds"] else "FAILS"
    return "\n".join(
        [
            f"Setup: scikit-learn's digits, {meta['train_samples']} training samples sorted by "
            f"class in {meta['shards']} shards of {meta['samples_per_shard']}, "
            f"{meta['test_samples']} stratified test samples (split seed {meta['split_seed']}); "
            f"a 2-conv CNN, SGD lr {meta['lr']} momentum 0.9, batch {meta['batch_size']}, "
            f"{meta['epochs']} epochs; seeds {meta['seeds']} (model init and shuffle seed).",
            "\n".join(rows),
            f"Shuffle quality is measured on each method's first epoch with seed "
            f"{meta['seeds'][0]}: *neighbour distance* is the mean distance in the output of "
            "samples adjacent on disk over the epoch length (uniform shuffling about 0.33, none "
            f"about 0), *shard mixing* the fraction of {meta['quality_window']}-sample runs that "
            f"draw from at least {meta['quality_min_shards']} shards, *classes per batch* the mean "
            "number of distinct labels in a batch (10 classes).",
            f"The claim — our default within one standard deviation of the full-shuffle baseline "
            f"— **{verdict}** (difference {results['difference']:+.2%}).",
            "What the rows say for users: a shuffle window (block) much smaller than the data, "
            "over shards that each hold one class, trains on a drifting class mix and loses "
            "accuracy — raise `shuffle_block_size`, use more canonical nodes (py1s's default of "
            "64 interleaves 64 parts in every batch), or shuffle when writing the shards.",
        ]
    )
