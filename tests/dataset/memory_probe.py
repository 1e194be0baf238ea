"""Memory of a StreamingDataset process tree: ``python -m tests.dataset.memory_probe CONFIG``.

``mode=shards``: an index of ``shards`` tiny shards (only the index: construction and the
epoch plan never open a shard), a DataLoader with 2 workers started over it; prints the main
process's RSS and anonymous memory, and the workers' USS and private anonymous memory (see
:func:`anonymous_memory`), once the workers have built their epoch plan.
``mode=epochs``: a small real dataset streamed for ``epochs`` epochs by 2 persistent workers;
prints the summed USS after each epoch and the least-squares slope over the second half.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from typing import Any

import numpy as np
import psutil
from torch.utils.data import DataLoader

from streaming_lightning import MDSWriter
from streaming_lightning.dataset import StreamingDataset


def fake_index(root: str, shards: int) -> None:
    os.makedirs(root, exist_ok=True)
    entry = {
        "column_encodings": ["int"],
        "column_names": ["x"],
        "column_sizes": [8],
        "compression": None,
        "format": "mds",
        "hashes": [],
        "samples": 10,
        "size_limit": 1 << 26,
        "version": 2,
        "zip_data": None,
    }
    listing = [
        {**entry, "raw_data": {"basename": f"shard.{i:06d}.mds", "bytes": 132, "hashes": {}}}
        for i in range(shards)
    ]
    with open(os.path.join(root, "index.json"), "w") as file:
        json.dump({"version": 2, "shards": listing}, file)


def tree_memory(loader_iter: Any) -> tuple[int, int]:
    """(main RSS, summed worker USS)."""
    me = psutil.Process()
    workers = [psutil.Process(w.pid) for w in getattr(loader_iter, "_workers", [])]
    return me.memory_info().rss, sum(w.memory_full_info().uss for w in workers)


def anonymous_memory(pid: int, private_only: bool) -> int:
    """Bytes of anonymous memory (heap, Python objects, numpy arrays) of a process: what it
    costs the machine, unlike file-backed pages (libraries, the memory-mapped shard table),
    which the page cache holds once for all processes and can reclaim. ``private_only``
    counts only pages no other process maps (a forked worker's own allocations and the
    parent's pages it has written to), else every anonymous page mapped."""
    total = 0
    anonymous = False
    with open(f"/proc/{pid}/smaps") as smaps:
        for line in smaps:
            head = line.split(maxsplit=6)
            if "-" in head[0] and not head[0].endswith(":"):  # a mapping's header line
                path = head[5].strip() if len(head) > 5 else ""
                anonymous = not path or path.startswith("[heap") or path.startswith("[anon")
                continue
            if private_only:
                counted: tuple[str, ...] = ("Private_Clean:", "Private_Dirty:") if anonymous else ()
            else:
                counted = ("Anonymous:",)
            if head[0] in counted:
                total += int(head[1]) * 1024
    return total


def shards_mode(config: dict[str, Any]) -> dict[str, Any]:
    remote = os.path.join(config["tmp"], "remote")
    fake_index(remote, config["shards"])
    dataset = StreamingDataset(
        remote=remote, local=os.path.join(config["tmp"], "cache"), shuffle=True, batch_size=10
    )
    len(dataset)  # the epoch plan is built
    # Garbage still waiting for a collection when the workers fork is freed in the parent
    # afterwards, which leaves its pages to the workers alone: they would count as the
    # workers' own memory, by chance of when the collector last ran.
    gc.collect()
    loader = DataLoader(dataset, batch_size=10, num_workers=2)
    iterator = iter(loader)
    # Workers start their epoch (plan, reader) and then block on the first shard's download,
    # which does not exist: measure while they wait.
    time.sleep(3)
    gc.collect()
    main_rss, worker_uss = tree_memory(iterator)
    workers = [w.pid for w in getattr(iterator, "_workers", [])]
    return {
        "main_rss": main_rss,
        "worker_uss": worker_uss // 2,
        "main_anonymous": anonymous_memory(os.getpid(), private_only=False),
        "worker_private_anonymous": sum(anonymous_memory(p, True) for p in workers) // 2,
    }


def epochs_mode(config: dict[str, Any]) -> dict[str, Any]:
    path = os.path.join(config["tmp"], "data")
    with MDSWriter(
        out=path, columns={"x": "int", "v": "ndarray:float32:16"}, size_limit=1 << 14
    ) as writer:
        for i in range(4000):
            writer.write({"x": i, "v": np.full(16, i, np.float32)})
    dataset = StreamingDataset(local=path, shuffle=True, batch_size=32)
    loader = DataLoader(dataset, batch_size=32, num_workers=2, persistent_workers=True)
    totals = []
    iterator = None
    for epoch in range(config["epochs"]):
        dataset.set_epoch(epoch)
        iterator = iter(loader)
        for _ in iterator:
            pass
        _, worker_uss = tree_memory(iterator)
        totals.append(psutil.Process().memory_full_info().uss + worker_uss)
    half = len(totals) // 2
    y = np.array(totals[half:], np.float64)
    x = np.arange(half, len(totals), dtype=np.float64)
    slope = float(np.polyfit(x, y, 1)[0])
    return {"slope": slope, "from": half, "to": len(totals) - 1, "uss": totals}


def main() -> None:
    config = json.loads(sys.argv[1])
    result = shards_mode(config) if config["mode"] == "shards" else epochs_mode(config)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
