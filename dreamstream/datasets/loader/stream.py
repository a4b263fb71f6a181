"""One reader's stream of batch parts: a webdataset pipeline of plan -> fetch -> assemble stages.

A reader (a DataLoader worker, or the loader thread when workers = 0) yields `(tensors, info)` parts:
its rows of each batch, and what the trainer-side loader needs to know (epoch, batch index, counters,
shards read as new). In fixed mode the stream runs epoch after epoch from the position it was started
at; every reader yields exactly the same number of parts per epoch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import webdataset as wds
from torch.utils.data import IterableDataset, get_worker_info

from dreamstream.datasets.loader.config import LoaderConfig
from dreamstream.datasets.loader.executor import Assembler, ChunkStore, fetch_ahead
from dreamstream.datasets.loader.fetch import FailureWindow, FetchPolicy
from dreamstream.datasets.loader.plan import BatchPlan
from dreamstream.datasets.loader.shards import FollowSource, ListSource, fingerprint, split_epoch
from dreamstream.datasets.loader.tbtt import Source, TbttSampler
from dreamstream.datasets.loader.windows import WindowSampler
from dreamstream.datasets.reader import Dataset
from dreamstream.datasets.records import CommitRecord

Part = tuple[dict[str, torch.Tensor], dict[str, Any]]


@dataclass
class ReaderJob:
    """Everything a reader needs, plain enough to be sent to spawned DataLoader workers."""

    url: str
    storage_options: dict[str, Any] | None
    config: LoaderConfig
    rank: int
    world_size: int
    rows: list[int]  # batch rows of each reader of a rank (one entry per worker)
    records: list[CommitRecord] | None  # fixed mode: the corpus' shards
    epoch: int = 0
    skip: int = 0  # batches of `epoch` already consumed
    seen: list[str] = field(default_factory=list)  # follow mode: shards already read as new
    pin: bool = False

    @property
    def readers(self) -> int:
        return self.world_size * len(self.rows)

    @property
    def all_rows(self) -> list[int]:
        """Rows of every reader, rank-major: reader id = rank * workers + worker."""
        return self.rows * self.world_size


def reader_rng(config: LoaderConfig, epoch: int, reader: int) -> np.random.Generator:
    return np.random.default_rng([config.seed, epoch, reader, 1 if config.follow else 0])


def make_sampler(source: Source, rows: int, config: LoaderConfig, rng: np.random.Generator) -> Any:
    if config.mode == "tbtt":
        return TbttSampler(source, rows, config.seq_len, config.shuffle_buffer, config.reset_interval, rng)
    return WindowSampler(source, rows, config.seq_len, config.shuffle_buffer, rng)


def _dry_run_batches(share: list[CommitRecord], rows: int, config: LoaderConfig, epoch: int, reader: int) -> int:
    sampler = make_sampler(ListSource(share), rows, config, reader_rng(config, epoch, reader))
    count = 0
    while sampler.next_batch() is not None:
        count += 1
    return count


def epoch_batches(shares: list[list[CommitRecord]], all_rows: list[int], config: LoaderConfig, epoch: int) -> int:
    """Batches in the epoch: the most any reader needs, so every reader (and rank) yields the same count."""
    if config.mode == "windows":
        per_batch = [rows * config.seq_len for rows in all_rows]
        return max(-(-sum(r.steps for r in share) // n) for share, n in zip(shares, per_batch, strict=True))
    return max(_dry_run_batches(share, rows, config, epoch, reader)
               for reader, (share, rows) in enumerate(zip(shares, all_rows, strict=True)))


_LAYOUTS: dict[tuple[str, tuple[int, ...], str, int], tuple[list[list[CommitRecord]], int]] = {}


def epoch_layout(records: list[CommitRecord], all_rows: list[int], config: LoaderConfig,
                 epoch: int) -> tuple[list[list[CommitRecord]], int]:
    """(each reader's shards, batches per reader) for an epoch; cached, as every reader computes it."""
    key = (fingerprint(records), tuple(all_rows), repr(config), epoch)
    if key not in _LAYOUTS:
        while len(_LAYOUTS) >= 4:
            _LAYOUTS.pop(next(iter(_LAYOUTS)))
        shares = split_epoch(records, all_rows, config.seed, epoch)
        _LAYOUTS[key] = shares, epoch_batches(shares, all_rows, config, epoch)
    return _LAYOUTS[key]


class ReaderStream(IterableDataset):
    """The IterableDataset a DataLoader (or the loader thread) iterates: one reader's parts, forever."""

    def __init__(self, job: ReaderJob, stop: threading.Event | None = None):
        super().__init__()
        self.job = job
        self.stop = stop

    def __getstate__(self) -> dict[str, Any]:  # sent to spawned workers: events do not travel
        return {"job": self.job, "stop": None}

    def __iter__(self) -> Iterator[Part]:
        info = get_worker_info()
        worker = info.id if info is not None else 0
        return iter(reader_parts(self.job, worker, self.stop))


def reader_parts(job: ReaderJob, worker: int, stop: threading.Event | None = None) -> Iterator[Part]:
    config = job.config
    reader = job.rank * len(job.rows) + worker
    rows = job.rows[worker]
    dataset = Dataset(job.url, job.storage_options)
    policy = FetchPolicy(config.retries, config.retry_backoff_s, config.on_error, config.verify)
    failures = FailureWindow(config.failure_window, config.max_failed_share, job.url)
    pool = ThreadPoolExecutor(config.io_threads, thread_name_prefix="dreamstream-fetch") if config.io_threads else None
    try:
        if config.follow:
            yield from _follow_parts(job, dataset, policy, failures, pool, reader, rows, stop)
        else:
            yield from _fixed_parts(job, dataset, policy, failures, pool, reader, rows)
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def _pipeline(plans: Iterator[BatchPlan], store: ChunkStore, assembler: Assembler, info: dict[str, Any],
              extra: Callable[[], dict[str, Any]] | None = None) -> Iterator[Part]:
    """plan -> fetch (our fsspec opener, ahead in threads) -> assemble, as a webdataset pipeline."""

    def assemble(source: Iterator[BatchPlan]) -> Iterator[Part]:
        first = True
        for plan in source:
            tensors, counters = assembler(plan, force_reset=first)
            first = False
            counters.update(store.counters.take())
            part_info = {**info, "batch": plan.index, "counters": counters}
            if extra is not None:
                for key, value in extra().items():
                    if key == "counters":
                        counters.update(value)
                    else:
                        part_info[key] = value
            yield tensors, part_info

    pipeline = wds.DataPipeline(lambda: plans, lambda source: fetch_ahead(source, store), assemble)
    try:
        yield from pipeline
    finally:
        store.close()


def _fixed_parts(job: ReaderJob, dataset: Dataset, policy: FetchPolicy, failures: FailureWindow,
                 pool: ThreadPoolExecutor | None, reader: int, rows: int) -> Iterator[Part]:
    config = job.config
    assert job.records is not None
    epoch, skip = job.epoch, job.skip
    while True:
        shares, batches = epoch_layout(job.records, job.all_rows, config, epoch)
        sampler = make_sampler(ListSource(shares[reader]), rows, config, reader_rng(config, epoch, reader))
        store = ChunkStore(dataset, policy, pool, failures)
        if config.mode == "windows":
            store.on_failure = sampler.drop_shard

        def plans(sampler: Any = sampler, skip: int = skip, batches: int = batches) -> Iterator[BatchPlan]:
            for _ in range(skip):  # a resumed epoch: re-plan the consumed batches, read nothing
                sampler.next_batch()
            live = sampler.live()
            sampler.force_reset()
            for index in range(skip, batches):
                plan = sampler.next_batch() or BatchPlan(index)  # out of data: padding up to the count
                plan.index = index
                if index == skip:
                    plan.acquire = live + plan.acquire
                yield plan

        info = {"reader": reader, "epoch": epoch}
        yield from _pipeline(plans(), store, Assembler(dataset.spec, rows, config.seq_len, store, job.pin), info)
        epoch, skip = epoch + 1, 0


def _follow_parts(job: ReaderJob, dataset: Dataset, policy: FetchPolicy, failures: FailureWindow,
                  pool: ThreadPoolExecutor | None, reader: int, rows: int,
                  stop: threading.Event | None) -> Iterator[Part]:
    config = job.config
    rng = reader_rng(config, 0, reader)
    source = FollowSource(dataset, reader, job.readers, set(job.seen), config.relist_interval_s,
                          config.replay_window, rng, stop, policy.retries)
    sampler = make_sampler(source, rows, config, rng)
    store = ChunkStore(dataset, policy, pool, failures)

    def on_failure(shard: str) -> None:
        sampler.drop_shard(shard)
        source.exclude(shard)

    store.on_failure = on_failure

    def plans() -> Iterator[BatchPlan]:
        index = 0
        while True:
            plan = sampler.next_batch()
            assert plan is not None, "a follow-mode sampler never runs out"
            plan.index = index
            index += 1
            yield plan

    def follow_info() -> dict[str, Any]:
        new, source.newly_seen = source.newly_seen, []
        return {"counters": source.take_counters(), "gauges": source.gauges(), "new_shards": new}

    info = {"reader": reader, "epoch": 0}
    yield from _pipeline(plans(), store, Assembler(dataset.spec, rows, config.seq_len, store, job.pin), info,
                         follow_info)
