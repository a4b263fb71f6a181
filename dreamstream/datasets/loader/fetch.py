"""Our shard opener: fsspec reads with retries and backoff and checksum checks; samples decoded only by
our pickle-free `decode_sample`.

webdataset 1.0.2 has no s3:// opener and sends gs:// to a `gsutil` sub-process; the loader never goes
through `webdataset.gopen`: it reads each shard whole with fsspec (`Dataset.shard_bytes`, which also
checks size and sha256 against the commit record), splits it into samples without copying
(dreamstream.datasets.tar, the parser every reader uses), and decodes each sample with
`dreamstream.datasets.reader.decode_chunk` when a batch first needs it. `register_gopen()` additionally
points webdataset's own `gopen_schemes` for s3, gs, gcs and memory at fsspec, so a plain
`webdataset.WebDataset("s3://...")` in user code reads through fsspec instead of a shell pipe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import fsspec
from webdataset.gopen import gopen_schemes

from dreamstream.datasets.errors import DatasetError, ReadError, StoreError
from dreamstream.datasets.reader import Dataset, split_shard
from dreamstream.datasets.records import CommitRecord
from dreamstream.datasets.storage import read_options

log = logging.getLogger(__name__)

GOPEN_SCHEMES = ("s3", "gs", "gcs", "memory")


def fsspec_gopen(url: str, mode: str = "rb", bufsize: int = 8192, **kw: Any) -> Any:
    """A webdataset gopen handler that opens any fsspec URL (storage options from fsspec config/env)."""
    fs, path = fsspec.core.url_to_fs(url)
    return fs.open(path, mode, **(read_options(fs) if mode.startswith("r") else {}))


def register_gopen(schemes: tuple[str, ...] = GOPEN_SCHEMES) -> None:
    for scheme in schemes:
        gopen_schemes[scheme] = fsspec_gopen


@dataclass
class FetchPolicy:
    retries: int = 3
    backoff_s: float = 0.5
    on_error: str = "skip"
    verify: bool = True


class FetchCounters:
    """Counts of shard reads, updated from the fetch threads (hence the lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, float] = {}

    def add(self, name: str, n: float = 1) -> None:
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + n

    def take(self) -> dict[str, float]:
        with self._lock:
            out, self._counts = self._counts, {}
        return out


class FailureWindow:
    """The outcomes of a reader's last `size` shard reads. More than `max_share` of `size` failed: the
    dataset or the store is broken, so the loader raises instead of training on padding forever.

    A shard counts as failed when it could not be read or one of its samples did not decode. The
    denominator is the window's size, not the reads so far, so the first failures of a run do not
    trip it; a dataset with fewer shards fills the window across epochs.
    """

    def __init__(self, size: int, max_share: float, url: str):
        self.size, self.max_share, self.url = size, max_share, url
        self._outcomes: deque[list[Any]] = deque(maxlen=size)  # [shard, ok]
        self._lock = threading.Lock()

    def record(self, shard: str, ok: bool) -> None:
        with self._lock:
            self._outcomes.append([shard, ok])
            self._check()

    def fail_chunk(self, shard: str) -> None:
        """A sample of `shard` did not decode: its read counts as failed."""
        with self._lock:
            for outcome in reversed(self._outcomes):
                if outcome[0] == shard:
                    outcome[1] = False
                    break
            self._check()

    def _check(self) -> None:
        failed = [shard for shard, ok in self._outcomes if not ok]
        if len(failed) > self.max_share * self.size:
            raise DatasetError(
                f"{len(failed)} of the last {len(self._outcomes)} shard reads failed, more than "
                f"loader.max_failed_share={self.max_share} of loader.failure_window={self.size}: the data is "
                f"broken, stopping rather than training on padding (latest: {', '.join(failed[-3:])}; the "
                "warnings logged for each say why)", root=self.url)


def fetch_shard(dataset: Dataset, record: CommitRecord, policy: FetchPolicy,
                counters: FetchCounters) -> dict[str, dict[str, Any]] | None:
    """Read, verify and split a shard, retrying with backoff; None when it failed and is skipped.

    Samples are decoded later, one chunk at a time when a batch first needs it (`decode_chunk`): a shard
    waits in the buffer compressed, and decoding runs where the rows are copied (measured faster on small
    machines than decoding in the fetch threads, and it bounds memory to the chunks in use).
    Retried: reads that may succeed later (ReadError: missing, checksum; StoreError: the store failed;
    without `verify`, a split failure, as a short read looks like damage). Not retried: facts about the
    stored object (its size differs from the record's, a verified shard does not split).
    A StoreError that persists through the retries is raised even with `on_error: skip`: when the store
    is unreachable every shard would fail, and skipping them one by one would train on padding.
    """
    error: DatasetError | None = None
    for attempt in range(policy.retries + 1):
        if attempt:
            counters.add("shard_retries")
            time.sleep(policy.backoff_s * 2 ** (attempt - 1))
        try:
            data = dataset.shard_bytes(record, verify=policy.verify)
            samples = split_shard(data, record, dataset.url)
        except (ReadError, StoreError) as exc:
            error = exc
            continue
        except DatasetError as exc:
            error = exc
            if policy.verify:
                break
            continue
        counters.add("shards_read")
        counters.add("bytes_read", len(data))
        return samples
    assert error is not None
    attempts = f"after {attempt + 1} attempt(s)"
    if policy.on_error == "raise" or isinstance(error, StoreError):
        raise type(error)(f"{error.reason} ({attempts})", root=dataset.url, shard=error.shard or record.shard_path,
                          key=error.key, field=error.field) from error
    counters.add("shards_skipped")
    log.warning("skipping shard %s of %s %s: %s", record.shard_path, dataset.url, attempts, error)
    return None
