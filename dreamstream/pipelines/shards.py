"""Shard access inside a task: the worker opens the dataset from its URL and streams one shard's samples.

`iter_chunks` holds the shard's bytes and one decoded sample at a time (not the whole decoded shard,
which is 100x+ larger than the shard for zstd-compressed frames), with every check that
`Dataset.read_shard` makes (it is the same code): checksum, tar structure, spec, agreement with the
commit record.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from dreamstream.datasets import Chunk, CommitRecord, Dataset


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
    """The shard's samples in shard order, decoded and checked (`Dataset.iter_shard`).

    `keys`: only these samples (the others are checked for membership in the record, not decoded).
    `fields`: decode only these fields (plus the reward and flags, which the record check needs), so
    that statistics of actions and rewards skip the frames; each decoded field is still checked.
    """
    return dataset.iter_shard(record, verify=verify, keys=keys, fields=fields)
