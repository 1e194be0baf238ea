"""webdataset tar shards → MDS, one conversion task per tar.

A webdataset sample is a run of consecutive tar members sharing a key: ``dir/0001.jpg``,
``dir/0001.cls``, ``dir/0001.json`` are sample ``dir/0001`` with fields ``jpg``, ``cls`` and
``json`` (the key is the name up to the first dot of its last component, as webdataset
splits it). Each field becomes one MDS column, named by its extension, plus ``__key__``.

Encodings follow webdataset's own default decoding, so a sample reads back as the values a
webdataset pipeline with ``.decode()`` would have given (images stay their original bytes):
``cls``/``cls2``/``index``/``inx``/``id`` → ``int``; ``txt``/``text``/``transcript`` → ``str``;
``json``/``jsn`` → ``json``; ``npy`` → ``ndarray`` (any dtype and shape, loaded without pickle);
everything else (images, audio, ``pyd``...) → ``bytes``. ``--columns EXT=ENCODING`` overrides.

The columns are the fields of the first tar's first samples; every sample must have exactly
those (MDS has no missing values): one without, or with another field, stops the conversion
naming the tar and the key. Members are read, never extracted, so no name can escape a folder.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from collections.abc import Iterator
from functools import partial
from typing import Any

import numpy as np

from recipes.common.convert import WriteOptions, convert_split
from streaming_lightning.errors import ConfigError

#: webdataset's split of a member name into (key, extension).
_KEY_EXT = re.compile(r"^((?:.*/|)[^./]+)\.([^/]*)$")
KEY = "__key__"
#: Fields whose encodings are not bytes (webdataset's default decoders).
ENCODINGS = {
    **dict.fromkeys(("cls", "cls2", "index", "inx", "id"), "int"),
    **dict.fromkeys(("txt", "text", "transcript"), "str"),
    **dict.fromkeys(("json", "jsn"), "json"),
    "npy": "ndarray",
}
#: Samples of the first tar inspected to find the fields.
PROBE = 100


def find_tars(raw: str) -> list[str]:
    if os.path.isfile(raw):
        return [raw]
    if not os.path.isdir(raw):
        raise ConfigError(f"No file or folder {raw}: --in must be a .tar or a folder of them.")
    tars = sorted(
        os.path.join(folder, name)
        for folder, _, names in os.walk(raw)
        for name in names
        if name.endswith(".tar") and not name.startswith(".")
    )
    if not tars:
        raise ConfigError(f"No *.tar files under {raw}.")
    return tars


def samples_of(path: str) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {extension: bytes}) for each run of consecutive members sharing a key."""
    key: str | None = None
    fields: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                match = _KEY_EXT.match(member.name)
                if match is None:
                    continue  # no extension: not a webdataset field (webdataset skips it too)
                name, ext = match.group(1), match.group(2)
                if name != key:
                    if key is not None:
                        yield key, fields
                    key, fields = name, {}
                if ext in fields:
                    raise ConfigError(f"{path}: sample {key!r} has two {ext!r} members.")
                file = tar.extractfile(member)
                assert file is not None  # a regular file always has data
                fields[ext] = file.read()
    except tarfile.TarError as err:
        raise ConfigError(f"{path}: not a readable tar file ({err}).") from None
    if key is not None:
        yield key, fields


def plan_columns(first_tar: str, overrides: dict[str, str]) -> dict[str, str]:
    found: dict[str, None] = {}
    for n, (_, fields) in enumerate(samples_of(first_tar)):
        found.update(dict.fromkeys(fields))
        if n + 1 >= PROBE:
            break
    if not found:
        raise ConfigError(f"{first_tar} holds no webdataset samples (key.ext members).")
    unknown = [ext for ext in overrides if ext not in found]
    if unknown:
        raise ConfigError(f"--columns names {unknown}; the samples have {sorted(found)}.")
    columns = {KEY: "str"}
    for ext in sorted(found):
        columns[ext] = overrides.get(ext) or ENCODINGS.get(ext.rsplit(".", 1)[-1], "bytes")
    return columns


def _decode(encoding: str, data: bytes, where: str) -> Any:
    try:
        if encoding == "int":
            return int(data.decode("utf-8").strip())
        if encoding == "str":
            return data.decode("utf-8")
        if encoding == "json":
            return json.loads(data)
        if encoding == "ndarray":
            return np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, UnicodeDecodeError, OSError) as err:
        raise ConfigError(f"{where}: not a valid {encoding} value ({err}).") from None
    return data  # bytes columns, and encodings given with --columns (their coder checks)


def encode_tar(path: str, columns: dict[str, str]) -> Iterator[dict[str, Any]]:
    """One tar's samples, in member order (runs in a worker process)."""
    wanted = set(columns) - {KEY}
    for key, fields in samples_of(path):
        if set(fields) != wanted:
            missing, extra = sorted(wanted - set(fields)), sorted(set(fields) - wanted)
            raise ConfigError(
                f"{path}: sample {key!r} has fields {sorted(fields)}, not the dataset's "
                f"{sorted(wanted)} (missing {missing}, extra {extra}); MDS stores every column "
                "for every sample."
            )
        sample: dict[str, Any] = {KEY: key}
        for ext, data in fields.items():
            sample[ext] = _decode(columns[ext], data, f"{path}: {key}.{ext}")
        yield sample


def convert(
    raw: str, options: WriteOptions, columns: dict[str, str] | None = None, split: str | None = None
) -> dict[str, Any]:
    tars = find_tars(raw)
    planned = plan_columns(tars[0], columns or {})
    index = convert_split(
        tars, partial(encode_tar, columns=planned), planned, options, split=split, unit="tar"
    )
    return {split or "dataset": index, "tars": len(tars), "columns": planned}
