"""Datasets inside a task: the URL a task carries, and the dataset the worker opens from it.

A task then streams its shard with `Dataset.iter_shard` (the one reader: checksum, tar structure, spec,
agreement with the commit record), which holds the shard's bytes and one decoded sample at a time, not
the whole decoded shard (100x+ larger than the shard for zstd-compressed frames).
"""

from __future__ import annotations

import os

from dreamstream.datasets import Dataset


def task_url(url: str) -> str:
    """The URL to put in a task: a relative local path made absolute, since a worker of an existing
    cluster may run in another working directory (or on another machine sharing the filesystem)."""
    return url if "://" in url else os.path.abspath(url)


def task_dataset(url: str) -> Dataset:
    """The dataset at `url`, opened inside the task: the filesystem and its credentials come from this
    worker's environment and fsspec config (fsspec reuses one filesystem instance per process). The card
    is read again by each task, one small request next to a shard."""
    return Dataset(url)
