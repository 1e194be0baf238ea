"""Converting a raw dataset to MDS: the part every recipe shares.

A recipe lists its input as *tasks* (one per raw file, or per group of small files), in the
order samples should have, and gives a function that turns one task into samples. This module
runs the tasks — in parallel processes when ``--workers`` > 1 — each into its own sub-dataset
``<out>/<split>/part-NNNNN``, then merges the parts' indexes into ``<out>/<split>/index.json``.

Why parts, not one writer: processes never share a writer, the merged dataset's sample order is
the task order whatever the worker count, and a crashed conversion resumes — a part with an
``index.json`` is finished and skipped on the next run, a part without one is redone. A
finished split (merged index present) is kept as it is — never overwritten without
``--force``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

from tqdm import tqdm

from recipes.common.sidecar import get_bytes, put_bytes
from streaming_lightning import MDSWriter, merge_index
from streaming_lightning.errors import ConfigError
from streaming_lightning.format.index import INDEX_BASENAME
from streaming_lightning.storage.registry import is_remote
from streaming_lightning.storage.transfer import object_exists
from streaming_lightning.storage.uploader import join_url

Sample = dict[str, Any]
#: Turns one task (a raw file, or a group of them) into samples, in order.
Encoder = Callable[[Any], Iterable[Sample]]
#: Turns one task into (group, sample) pairs, each group becoming its own sub-dataset; the
#: generator may *return* a dict of counts, kept with the task's completion marker.
GroupedEncoder = Callable[[Any], Generator[tuple[str, Sample], None, dict[str, Any] | None]]
#: Folder of a grouped split holding each finished task's marker (groups, counts).
DONE_DIR = ".done"


@dataclass
class WriteOptions:
    """How converted shards are written (the ``convert`` command's shared flags)."""

    out: str
    compression: str | None = None
    hashes: list[str] = field(default_factory=list)
    size_limit: str = "64mb"
    workers: int = 1
    force: bool = False
    progress: bool = True


def add_write_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags every recipe's ``convert`` takes (besides its own ``--in``)."""
    parser.add_argument("--out", required=True, help="output directory or remote URL")
    parser.add_argument(
        "--compression", default=None, help="shard compression, e.g. zstd, zstd:7, gz, br, sn"
    )
    parser.add_argument(
        "--hashes", default="", help="comma-separated digests stored per shard, e.g. sha1,xxh64"
    )
    parser.add_argument("--size-limit", default="64mb", help="shard size limit (default 64mb)")
    parser.add_argument(
        "--workers", type=int, default=1, help="processes converting input files at once"
    )
    parser.add_argument(
        "--force", action="store_true", help="replace a finished conversion at --out"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def write_options(args: argparse.Namespace) -> WriteOptions:
    if args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}.")
    return WriteOptions(
        out=args.out,
        compression=args.compression,
        hashes=[h for h in args.hashes.split(",") if h],
        size_limit=args.size_limit,
        workers=args.workers,
        force=args.force,
        progress=not args.no_progress,
    )


@dataclass(frozen=True)
class _Part:
    """One task's conversion, run in a worker process (picklable)."""

    index: int
    task: Any
    out: str
    columns: dict[str, str]
    encode: Encoder
    compression: str | None
    hashes: tuple[str, ...]
    size_limit: str

    @property
    def marker(self) -> str:
        """Exists once the part is finished: its index, written last."""
        return join_url(self.out, INDEX_BASENAME)

    def run(self) -> int:
        count = 0
        with MDSWriter(
            out=self.out,
            columns=self.columns,
            compression=self.compression,
            hashes=list(self.hashes),
            size_limit=self.size_limit,
            exist_ok=True,  # a part without index.json is an interrupted attempt: redo it
            max_workers=1,
        ) as writer:
            for sample in self.encode(self.task):
                writer.write(sample)
                count += 1
        return count


@dataclass(frozen=True)
class _GroupedPart:
    """One task of a grouped conversion: its samples go to ``<root>/<group>/<name>``, one
    writer per group met, and ``<root>/.done/<name>.json`` marks it finished (run in a worker
    process; picklable)."""

    index: int
    task: Any
    root: str
    name: str
    columns: dict[str, str]
    encode: GroupedEncoder
    compression: str | None
    hashes: tuple[str, ...]
    size_limit: str

    @property
    def marker(self) -> str:
        return join_url(join_url(self.root, DONE_DIR), f"{self.name}.json")

    def run(self) -> int:
        counts: dict[str, int] = {}
        # Leaving the stack finishes every group's writer (index.json last); an exception
        # aborts them all instead, so an unfinished part never looks finished.
        with ExitStack() as stack:
            writers: dict[str, MDSWriter] = {}
            generator = self.encode(self.task)
            while True:
                try:
                    group, sample = next(generator)
                except StopIteration as stop:
                    stats = stop.value or {}
                    break
                writer = writers.get(group)
                if writer is None:
                    check_group_name(group, self.task)
                    writer = MDSWriter(
                        out=join_url(join_url(self.root, group), self.name),
                        columns=self.columns,
                        compression=self.compression,
                        hashes=list(self.hashes),
                        size_limit=self.size_limit,
                        exist_ok=True,  # left by an interrupted attempt: redo it
                        max_workers=1,
                    )
                    writers[group] = writer
                    stack.enter_context(writer)
                writer.write(sample)
                counts[group] = counts.get(group, 0) + 1
        marker = {"task": str(self.task), "samples": counts, "stats": stats}
        put_bytes(self.marker, json.dumps(marker, sort_keys=True).encode())
        return sum(counts.values())


def check_group_name(group: str, task: Any) -> None:
    """A group names a folder: one plain path component, nothing that escapes the output."""
    if not group or group in (".", "..") or "/" in group or "\\" in group or group == DONE_DIR:
        raise ConfigError(f"{task}: cannot write a sub-dataset named {group!r}.")


def _run_part(part: _Part | _GroupedPart) -> tuple[int, int]:
    return part.index, part.run()


def _exists(location: str) -> bool:
    if is_remote(location):
        return object_exists(location)
    return os.path.exists(location)


def convert_split(
    tasks: Sequence[Any],
    encode: Encoder,
    columns: dict[str, str],
    options: WriteOptions,
    split: str | None = None,
    unit: str = "file",
) -> str:
    """Convert ``tasks`` (in order) into the MDS dataset ``<out>/<split>``; returns its root.

    ``encode`` must be a module-level function (it runs in worker processes).
    """
    if not tasks:
        raise ConfigError(f"Nothing to convert for split {split or '(none)'}: no input {unit}s.")
    root = join_url(options.out, split) if split else options.out
    index = join_url(root, INDEX_BASENAME)
    if _exists(index):
        if not options.force:
            # Finished earlier (a rerun after a crash in a later split, or by mistake): kept.
            print(f"{root}: already converted, kept (pass --force to redo it)", file=sys.stderr)
            return index
        _remove(root)
    width = max(5, len(str(len(tasks) - 1)))
    parts = [
        _Part(
            index=i,
            task=task,
            out=join_url(root, f"part-{i:0{width}d}"),
            columns=columns,
            encode=encode,
            compression=options.compression,
            hashes=tuple(options.hashes),
            size_limit=options.size_limit,
        )
        for i, task in enumerate(tasks)
    ]
    _run_parts(parts, root, options, split or "dataset", unit)
    # Only this run's parts: a remote root may still hold parts of an older, longer run.
    return merge_index([part.marker for part in parts], root)


def convert_grouped_split(
    tasks: Sequence[Any],
    encode: GroupedEncoder,
    columns: dict[str, str],
    options: WriteOptions,
    split: str,
    unit: str = "file",
) -> dict[str, Any]:
    """Convert ``tasks`` into one sub-dataset per group under ``<out>/<split>``: each group's
    ``<split>/<group>/index.json`` (its samples in task order) and the whole split's
    ``<split>/index.json`` over every group (in group name order).

    For inputs that interleave several datasets (the Pile's 22 subsets in each file), so
    each can be streamed on its own and mixed with ``proportion``. Tasks run in parallel and
    resume like :func:`convert_split`: a task is finished when its marker exists. Returns
    {"index": the split's index, "groups": {group: samples}, "stats": [what each task's
    encoder returned, in task order]}.
    """
    if not tasks:
        raise ConfigError(f"Nothing to convert for split {split}: no input {unit}s.")
    root = join_url(options.out, split)
    index = join_url(root, INDEX_BASENAME)
    if _exists(index) and not options.force:
        print(f"{root}: already converted, kept (pass --force to redo it)", file=sys.stderr)
    elif _exists(index):
        _remove(root)
    width = max(5, len(str(len(tasks) - 1)))
    parts = [
        _GroupedPart(
            index=i,
            task=task,
            root=root,
            name=f"part-{i:0{width}d}",
            columns=columns,
            encode=encode,
            compression=options.compression,
            hashes=tuple(options.hashes),
            size_limit=options.size_limit,
        )
        for i, task in enumerate(tasks)
    ]
    _run_parts(parts, root, options, split, unit)
    return _merge_groups(parts, root, index)


def _run_parts(
    parts: Sequence[_Part | _GroupedPart], root: str, options: WriteOptions, what: str, unit: str
) -> None:
    """Run the parts not finished yet (no marker), with a progress bar over all of them."""
    rewrite = options.force and is_remote(root)  # a remote output cannot be cleared first
    todo = [part for part in parts if rewrite or not _exists(part.marker)]
    bar = tqdm(
        total=len(parts),
        initial=len(parts) - len(todo),
        desc=f"convert {what}",
        unit=f" {unit}",
        disable=not options.progress,
    )
    samples = 0
    try:
        for _, count in _execute(todo, options.workers):
            samples += count
            bar.update(1)
            bar.set_postfix(samples=samples)
    finally:
        bar.close()


def _merge_groups(parts: list[_GroupedPart], root: str, index: str) -> dict[str, Any]:
    groups: dict[str, list[str]] = {}
    totals: dict[str, int] = {}
    stats: list[dict[str, Any]] = []
    for part in parts:
        data = get_bytes(part.marker)
        if data is None:
            raise ConfigError(f"{part.marker} is missing after its task ran; convert again.")
        marker = json.loads(data)
        for group, count in sorted(marker["samples"].items()):
            groups.setdefault(group, []).append(
                join_url(join_url(join_url(root, group), part.name), INDEX_BASENAME)
            )
            totals[group] = totals.get(group, 0) + int(count)
        stats.append(marker["stats"])
    if not groups:
        raise ConfigError(f"{root}: the input holds no samples.")
    merged = [merge_index(files, join_url(root, group)) for group, files in sorted(groups.items())]
    merge_index(merged, root)
    return {"index": index, "groups": dict(sorted(totals.items())), "stats": stats}


#: The worker pool of the conversion in progress, shared by its splits (see shared_workers).
_SHARED_POOL: ProcessPoolExecutor | None = None


def _spawn_pool(workers: int) -> ProcessPoolExecutor:
    # spawn: workers start clean (no inherited threads or open writers from the parent).
    return ProcessPoolExecutor(workers, mp_context=get_context("spawn"))


@contextmanager
def shared_workers(workers: int) -> Iterator[None]:
    """One pool of ``workers`` processes for every :func:`convert_split` inside the block
    (a conversion's splits). A spawned worker takes about a second to start (it imports the
    library, and torch with it): paid once per conversion, not once per split."""
    global _SHARED_POOL
    if workers <= 1 or _SHARED_POOL is not None:
        yield
        return
    with _spawn_pool(workers) as pool:
        _SHARED_POOL = pool
        try:
            yield
        finally:
            _SHARED_POOL = None


def _execute(parts: Sequence[_Part | _GroupedPart], workers: int) -> Iterator[tuple[int, int]]:
    if workers == 1 or len(parts) <= 1:
        for part in parts:
            yield _run_part(part)
        return
    with ExitStack() as stack:
        pool = _SHARED_POOL or stack.enter_context(_spawn_pool(min(workers, len(parts))))
        futures = [pool.submit(_run_part, part) for part in parts]
        try:
            for future in as_completed(futures):
                yield future.result()
        except BaseException:
            for future in futures:
                future.cancel()  # finished parts stay: the next run resumes after them
            raise


def _remove(root: str) -> None:
    """Clear a local output before ``--force`` rewrites it; a remote one is overwritten in
    place (its parts are rewritten and its index replaced last)."""
    if not is_remote(root) and os.path.isdir(root):
        shutil.rmtree(root)


def comma_list(text: str | None) -> list[str] | None:
    """``"a,b"`` → ["a", "b"]; empty or None → None."""
    return [item for item in (text or "").split(",") if item] or None


def converter_main(
    argv: Sequence[str] | None,
    *,
    package: str,
    description: str | None,
    what: str,
    input_help: str,
    run: Callable[[argparse.Namespace, WriteOptions], Any],
    split_help: str | None = "subfolder of --out to write (default none)",
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> int:
    """``python -m recipes.PACKAGE convert --in ... --out ...``: the ``convert`` subcommand
    with ``--in``, ``--split`` (unless ``split_help`` is None: recipes that name their own
    splits), ``extra``'s flags and the shared write flags; ``run(args, options)`` does the
    conversion and returns its report."""
    from recipes.common.cli import run_command

    parser = argparse.ArgumentParser(prog=f"python -m recipes.{package}", description=description)
    commands = parser.add_subparsers(dest="command", required=True)
    conv = commands.add_parser("convert", help=what)
    conv.add_argument("--in", dest="raw", required=True, help=input_help)
    if split_help is not None:
        conv.add_argument("--split", default=None, help=split_help)
    if extra is not None:
        extra(conv)
    add_write_arguments(conv)
    args = parser.parse_args(argv)
    return run_command(lambda: run(args, write_options(args)))
