"""LAION conversion on Spark or Ray: the same shards, rows and samples as the single-machine
converter, spread over a cluster's executors.

The unit of work is an img2dataset shard (its parquet listing plus its tar or folder of
images), exactly as in :mod:`recipes.laion.convert`: each task runs ``encode_shard`` on the
shards of its partition, so filtering (``min_similarity``), image checks (``skip_bad``) and
column values are those of the single-machine path by construction. The input folder must be
readable by every executor (a shared filesystem, or local mode); the output may be remote.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from recipes.common.convert import WriteOptions
from recipes.laion.convert import COLUMNS, Shard, encode_shard, find_shards
from streaming_lightning.storage.uploader import join_url

#: Samples per batch a Ray task hands on (bounds its memory: images are ~10-100 KB each).
RAY_BATCH = 256


def _spark_samples(
    batch: Any, min_similarity: float | None, skip_bad: bool
) -> Iterator[dict[str, Any]]:
    """``udf_iterable`` for dataframe_to_mds: the samples of a batch of shard descriptors."""
    for record in batch.to_dict("records"):
        yield from encode_shard(Shard(**record), min_similarity, skip_bad)


def _ray_samples(
    batch: dict[str, Any], min_similarity: float | None, skip_bad: bool
) -> Iterator[dict[str, list[Any]]]:
    """``map_batches`` function: one shard descriptor in, its samples out in column batches."""
    for i in range(len(batch["name"])):
        shard = Shard(**{key: str(values[i]) for key, values in batch.items()})
        columns: dict[str, list[Any]] = {name: [] for name in COLUMNS}
        for sample in encode_shard(shard, min_similarity, skip_bad):
            for name in COLUMNS:
                columns[name].append(sample[name])
            if len(columns["jpg"]) == RAY_BATCH:
                yield columns
                columns = {name: [] for name in COLUMNS}
        if columns["jpg"]:
            yield columns


def _written(options: WriteOptions, split: str | None) -> dict[str, Any]:
    """Where and how both engines write: the same flags as the single-machine converter."""
    return {
        "out": join_url(options.out, split) if split else options.out,
        "columns": COLUMNS,
        "compression": options.compression,
        "hashes": list(options.hashes),
        "size_limit": options.size_limit,
        "exist_ok": options.force,
    }


def _report(result: Any, engine: str, shards: int, index_key: str) -> dict[str, Any]:
    return {
        index_key: result.merged_index,
        "samples": result.samples,
        "engine": engine,
        "input_shards": shards,
        "partitions": result.partitions,
        "seconds": round(result.seconds, 2),
    }


def convert_on_spark(
    spark: Any,
    raw: str,
    options: WriteOptions,
    split: str | None = "train",
    min_similarity: float | None = None,
    skip_bad: bool = False,
) -> dict[str, Any]:
    """Convert ``raw`` to ``<out>/<split>`` with one Spark task per img2dataset shard."""
    from streaming_lightning.convert import dataframe_to_mds

    shards = find_shards(raw)
    rows = [asdict(shard) for shard in shards]
    # parallelize keeps shard order (shuffling partitions would lose it), one shard a task.
    frame = spark.createDataFrame(
        spark.sparkContext.parallelize(rows, len(rows)),
        "name string, parquet string, images string, mode string",
    )
    result = dataframe_to_mds(
        frame,
        udf_iterable=_spark_samples,
        udf_kwargs={"min_similarity": min_similarity, "skip_bad": skip_bad},
        progress_bar=options.progress,
        **_written(options, split),
    )
    return _report(result, "spark", len(shards), split or "dataset")


def convert_on_ray(
    raw: str,
    options: WriteOptions,
    split: str | None = "train",
    min_similarity: float | None = None,
    skip_bad: bool = False,
) -> dict[str, Any]:
    """Convert ``raw`` to ``<out>/<split>`` with one Ray task per img2dataset shard (Ray must
    be initialised: ``ray.init()`` locally, or connected to a cluster)."""
    import ray

    from streaming_lightning.convert import write_mds

    shards = find_shards(raw)
    dataset = ray.data.from_items(
        [asdict(shard) for shard in shards], override_num_blocks=len(shards)
    ).map_batches(
        _ray_samples,  # type: ignore[arg-type]  # Ray's stubs take one-argument functions
        batch_size=1,
        fn_kwargs={"min_similarity": min_similarity, "skip_bad": skip_bad},
    )
    result = write_mds(dataset, **_written(options, split))
    return _report(result, "ray", len(shards), split or "dataset")
