"""Shard access inside a task: the worker opens the dataset from its URL and streams one shard's samples.

`iter_chunks` holds the shard's bytes and one decoded sample at a time (not the whole decoded shard,
which is 100x+ larger than the shard for zstd-compressed frames), with every check that
`Dataset.read_shard` makes: checksum, tar structure, spec, agreement with the commit record.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from dreamstream.datasets import (
    Chunk,
    CommitRecord,
    Dataset,
    DatasetError,
    EpisodeSpec,
    SpecError,
    decode_sample,
    group_members,
)
from dreamstream.datasets.codec import CodecError, decode_member
from dreamstream.datasets.reader import check_chunk_rows
from dreamstream.datasets.spec import FLAGS, REWARD


def task_url(url: str) -> str:
    """The URL to put in a task: a relative local path made absolute, since a worker of an existing
    cluster may run in another working directory (or on another machine sharing the filesystem)."""
    return url if "://" in url else os.path.abspath(url)


def task_dataset(url: str) -> Dataset:
    """The dataset at `url`, opened inside the task: the filesystem and its credentials come from this
    worker's environment and fsspec config (fsspec reuses one filesystem instance per process). The card
    is read again by each task, one small request next to a shard."""
    return Dataset(url)


def iter_chunks(dataset: Dataset, record: CommitRecord, verify: bool = True,
                keys: set[str] | None = None, fields: set[str] | None = None) -> Iterator[Chunk]:
    """The shard's samples in shard order, decoded and checked.

    `keys`: only these samples (the others are checked for membership in the record, not decoded).
    `fields`: decode only these fields (plus the reward and flags, which the record check needs), so
    that statistics of actions and rewards skip the frames; each decoded field is still checked.
    """
    needed = None if fields is None else set(fields) | {REWARD, *FLAGS}
    data = dataset.shard_bytes(record, verify=verify)
    rows = {row.key: row for row in record.samples}
    seen = set()
    for sample in group_members(data, record.shard_path):
        key = sample["__key__"]
        row = rows.get(key)
        if row is None or key in seen:
            raise DatasetError("sample is not listed in the commit record" if row is None else "sample appears twice",
                               root=dataset.url, shard=record.shard_path, key=key)
        seen.add(key)
        if keys is not None and key not in keys:
            continue
        if needed is None:
            meta, arrays = decode_sample(sample, dataset.spec, record.shard_path)
        else:
            meta, arrays = _decode_fields(sample, dataset.spec, needed, record.shard_path, row.steps)
        check_chunk_rows(row, meta, arrays, record.shard_path)
        yield Chunk(row=row, arrays=arrays, shard=record.shard_path)
    missing = sorted(set(rows) - seen)
    if missing:
        raise DatasetError(f"samples {missing} are in the commit record but not in the shard",
                           root=dataset.url, shard=record.shard_path)


def _decode_fields(sample: dict[str, Any], spec: EpisodeSpec, fields: set[str], shard: str,
                   steps: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Like decode_sample, for a subset of the fields: each one decoded, checked against the spec and
    the row count."""
    key = sample["__key__"]
    members = {member.partition(".")[0]: member for member in sample if not member.startswith("__")}
    missing = sorted(((fields & set(spec.fields)) | {"meta"}) - set(members))
    if missing:
        raise DatasetError(f"missing members {missing}", shard=shard, key=key)
    try:
        meta = decode_member("json", sample[members["meta"]])
    except CodecError as exc:
        raise DatasetError(str(exc), shard=shard, key=key, field="meta") from exc
    arrays = {}
    for name in fields & set(spec.fields):
        member = members[name]
        try:
            array = decode_member(member.partition(".")[2], sample[member])
            spec.fields[name].check(name, array)
        except (CodecError, SpecError) as exc:
            raise DatasetError(str(exc), shard=shard, key=key, field=name) from exc
        if len(array) != steps:
            raise DatasetError(f"{len(array)} rows, the commit record says {steps}", shard=shard, key=key,
                               field=name)
        arrays[name] = array
    if not isinstance(meta, dict):
        raise DatasetError("meta.json is not an object", shard=shard, key=key)
    return meta, arrays
