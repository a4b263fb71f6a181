"""Which shards each reader reads: the fixed-mode epoch split and the follow-mode source.

A *reader* is one stream of batch rows: (rank, DataLoader worker), numbered rank * workers + worker.

Fixed mode: the shard list is shuffled from (seed, epoch) and dealt to readers by step count. Written by
hand because webdataset's `split_by_node` / `split_by_worker` deal shards by position (islice) and read the
rank from the environment: here every process computes every reader's share from the commit records, so
batch counts can be made equal on every rank (no DDP hang) and a resumed epoch is re-planned exactly.

Follow mode: the reader re-lists commit records every `relist_interval_s`; shards it has never read as
new are dealt to readers by a hash of their name and read newest first; otherwise it replays shards drawn
from the newest `replay_window` steps.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Sequence

import numpy as np

from dreamstream.datasets.errors import DatasetError, StoreError
from dreamstream.datasets.reader import Dataset
from dreamstream.datasets.records import INDEX, CommitRecord

log = logging.getLogger(__name__)


class Stopped(Exception):
    """The loader was closed while a reader waited for data."""


def fingerprint(records: Sequence[CommitRecord]) -> str:
    """Identifies a shard list (names and checksums), to tell whether a saved position still applies."""
    digest = zlib.crc32("\n".join(f"{r.name}:{r.sha256}" for r in records).encode())
    return f"{len(records)}:{digest:08x}"


def check_enough_shards(records: Sequence[CommitRecord], readers: int, world_size: int, workers: int,
                        url: str) -> None:
    """Every reader needs a shard; with fewer, some rank would stop early and DDP would hang."""
    if len(records) < readers:
        raise DatasetError(
            f"{len(records)} committed shard(s) for {readers} readers (world size {world_size} x "
            f"{max(workers, 1)} loader worker(s)): every reader needs at least one shard, or ranks would get "
            "different batch counts and distributed training would hang. Write smaller shards "
            "(data.shard_max_bytes), use fewer loader.workers, or train on fewer ranks.",
            root=url,
        )


def split_epoch(records: Sequence[CommitRecord], rows: Sequence[int], seed: int,
                epoch: int) -> list[list[CommitRecord]]:
    """Shuffle the shards from (seed, epoch), then deal each to the reader with the fewest steps per row.

    `rows[r]` is reader r's number of batch rows. Deterministic: every process computes the same split.
    """
    order = np.random.default_rng([seed, epoch]).permutation(len(records))
    load = np.zeros(len(rows))
    per_row = np.asarray(rows, dtype=float)
    shares: list[list[CommitRecord]] = [[] for _ in rows]
    for i in order:
        reader = int(np.argmin(load / per_row))
        shares[reader].append(records[i])
        load[reader] += records[i].steps
    return shares


class ListSource:
    """Fixed mode: this reader's shards of the epoch, in order."""

    def __init__(self, records: Sequence[CommitRecord]):
        self._records = list(records)
        self._next = 0

    def poll(self) -> None:
        pass

    def eager(self) -> bool:
        """A shard can be pulled without replaying: here, any shard left."""
        return self._next < len(self._records)

    def pull(self, replay: bool = False) -> CommitRecord | None:
        if self._next >= len(self._records):
            return None
        self._next += 1
        return self._records[self._next - 1]

    def take_counters(self) -> dict[str, float]:
        return {}


class FollowSource:
    """Follow mode: new shards first (newest first, each read as new at most once), then replay."""

    def __init__(self, dataset: Dataset, reader: int, readers: int, seen: set[str], relist_interval_s: float,
                 replay_window: int, rng: np.random.Generator, stop: threading.Event | None = None,
                 retries: int = 3):
        self.dataset = dataset
        self.reader, self.readers = reader, readers
        self.seen = seen  # names read as new, by this reader or (after a resume) by anyone before
        self.interval = relist_interval_s
        self.replay_window = replay_window
        self.rng = rng
        self.stop = stop
        self.retries = retries
        self._list_failures = 0  # listings failed in a row
        self.known: dict[str, CommitRecord] = {}
        self.new: list[CommitRecord] = []  # ours and unread, oldest first (pop() takes the newest)
        self.newly_seen: list[str] = []  # read as new since the last take_counters()
        self._bad: set[str] = set()
        self._window: list[CommitRecord] = []
        self._window_p: np.ndarray | None = None
        self._last_list = -float("inf")
        self._counters: dict[str, float] = {}
        self._lag: float | None = None  # seconds from commit to first read of the last new shard

    def _count(self, name: str, n: float = 1) -> None:
        self._counters[name] = self._counters.get(name, 0) + n

    def take_counters(self) -> dict[str, float]:
        out, self._counters = self._counters, {}
        return out

    def gauges(self) -> dict[str, float]:
        out = {"follow_pending_new": len(self.new), "follow_known_shards": len(self.known)}
        if self._lag is not None:
            out["follow_lag_s"] = self._lag
        return out

    def exclude(self, name: str) -> None:
        """Never read this shard again (it failed); the others are unaffected."""
        self._bad.add(name)
        self.new = [r for r in self.new if r.name != name]
        if self.known.pop(name, None) is not None:
            self._window = [r for r in self._window if r.name != name]
            weights = np.array([r.steps for r in self._window], dtype=float)
            self._window_p = weights / weights.sum() if len(weights) else None

    def poll(self, force: bool = False) -> None:
        """Re-list the commit records if the interval has passed."""
        now = time.monotonic()
        if not force and now - self._last_list < self.interval:
            return
        self._last_list = now
        names = [n for n in self._list() if n not in self.known and n not in self._bad]
        self._count("follow_relists")
        if not names:
            return
        for record in self._fetch_records(names):
            self.known[record.name] = record
            if record.name not in self.seen and zlib.crc32(record.name.encode()) % self.readers == self.reader:
                self.new.append(record)
        self.new.sort(key=lambda r: (r.created, r.name))
        ordered = sorted(self.known.values(), key=lambda r: (r.created, r.name), reverse=True)
        window, steps = [], 0
        for record in ordered:
            if self.replay_window and steps >= self.replay_window:
                break
            window.append(record)
            steps += record.steps
        self._window = window
        weights = np.array([r.steps for r in window], dtype=float)
        self._window_p = weights / weights.sum()

    def _list(self) -> list[str]:
        """The record names; a failed listing is skipped (counted, warned) up to `retries` times in a row,
        then raises: the online dataset is out of reach."""
        try:
            names = self.dataset.record_names()
        except StoreError as exc:
            self._list_failures += 1
            self._count("follow_relist_errors")
            if self._list_failures > self.retries:
                raise StoreError(f"{exc.reason} ({self._list_failures} listings failed in a row)",
                                 root=self.dataset.url) from exc
            log.warning("follow: listing commit records failed (%d in a row): %s", self._list_failures, exc)
            return []
        self._list_failures = 0
        return names

    def _fetch_records(self, names: list[str]) -> list[CommitRecord]:
        """The readable records among `names`; a malformed one is never read again, one the store failed to
        return is tried again at the next listing."""
        records, errors = self.dataset.read_records(names)
        for exc in errors:
            log.warning("follow: ignoring commit record: %s", exc)
        retry = {exc.shard for exc in errors if isinstance(exc, StoreError)}
        read = {record.name for record in records}
        self._bad.update(n for n in names if n not in read and f"{INDEX}/{n}.json" not in retry)
        return records

    def eager(self) -> bool:
        return bool(self.new)

    def pull(self, replay: bool = False) -> CommitRecord | None:
        if self.new:
            record = self.new.pop()
            self.seen.add(record.name)
            self.newly_seen.append(record.name)
            self._count("follow_new_shards")
            self._lag = max(0.0, time.time() - record.created)
            return record
        if not replay:
            return None
        while not self._window:  # nothing committed yet: wait for the first shard
            if self.stop is not None and self.stop.is_set():
                raise Stopped()
            log.info("follow: waiting for a first committed shard in %s", self.dataset.url)
            deadline = time.monotonic() + self.interval
            while time.monotonic() < deadline:
                if self.stop is not None and self.stop.is_set():
                    raise Stopped()
                time.sleep(min(0.05, self.interval))
            self.poll(force=True)
            if self.new:
                return self.pull(replay)
        self._count("follow_replays")
        return self._window[int(self.rng.choice(len(self._window), p=self._window_p))]
