"""Our shard opener: fsspec reads with retries and backoff and checksum checks; samples decoded only by
our pickle-free `decode_sample`.

webdataset 1.0.2 has no s3:// opener and sends gs:// to a `gsutil` sub-process; the loader never goes
through `webdataset.gopen`: it reads each shard whole with fsspec (`Dataset.shard_bytes`, which also
checks size and sha256 against the commit record), splits it into samples without copying (tar.py), and
decodes each sample with `decode_sample` when a batch first needs it. `register_gopen()` additionally
points webdataset's own `gopen_schemes` for s3, gs, gcs and memory at fsspec, so a plain
`webdataset.WebDataset("s3://...")` in user code reads through fsspec instead of a shell pipe.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import fsspec
import numpy as np
from webdataset.gopen import gopen_schemes

from dreamstream.datasets.errors import DatasetError
from dreamstream.datasets.loader.tar import TarFormatError, tar_samples
from dreamstream.datasets.reader import Dataset, check_chunk_rows, decode_sample
from dreamstream.datasets.records import CommitRecord, SampleRow
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


def split_shard(data: bytes, record: CommitRecord, dataset: Dataset) -> dict[str, dict[str, Any]]:
    """The shard's samples, undecoded ({key: {"<field>.<suffix>": bytes or view}}), matched to its record."""
    where = record.shard_path
    try:
        samples = {sample["__key__"]: sample for sample in tar_samples(data)}
    except (TarFormatError, ValueError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot split the tar: {exc}", root=dataset.url, shard=where) from exc
    listed = {row.key for row in record.samples}
    if samples.keys() != listed:
        extra, missing = sorted(samples.keys() - listed), sorted(listed - samples.keys())
        raise DatasetError(f"samples do not match the commit record (not listed: {extra}, missing: {missing})",
                           root=dataset.url, shard=where)
    return samples


def decode_chunk(sample: dict[str, Any], row: SampleRow, dataset: Dataset, shard: str) -> dict[str, np.ndarray]:
    """One sample's arrays: decoded by `decode_sample` (pickle-free, spec-checked), checked against its row."""
    meta, arrays = decode_sample(sample, dataset.spec, shard)
    check_chunk_rows(row, meta, arrays, shard)
    return arrays


def fetch_shard(dataset: Dataset, record: CommitRecord, policy: FetchPolicy,
                counters: FetchCounters) -> dict[str, dict[str, Any]] | None:
    """Read, verify and split a shard, retrying with backoff; None when it failed and is skipped.

    Samples are decoded later, one chunk at a time when a batch first needs it (`decode_chunk`): a shard
    waits in the buffer compressed, and decoding runs where the rows are copied (measured faster on small
    machines than decoding in the fetch threads, and it bounds memory to the chunks in use).
    Reading (and without `verify`, splitting: a short read looks like damage) is retried; a shard whose
    bytes matched its checksum but does not split is damaged at the source and is not retried.
    """
    error: Exception | None = None
    for attempt in range(policy.retries + 1):
        if attempt:
            counters.add("shard_retries")
            time.sleep(policy.backoff_s * 2 ** (attempt - 1))
        try:
            data = dataset.shard_bytes(record, verify=policy.verify)
        except Exception as exc:  # unreachable store, missing or short object, checksum mismatch
            error = exc
            continue
        try:
            samples = split_shard(data, record, dataset)
        except DatasetError as exc:
            error = exc
            if policy.verify:
                break
            continue
        counters.add("shards_read")
        counters.add("bytes_read", len(data))
        return samples
    assert error is not None
    reason = error.reason if isinstance(error, DatasetError) else f"{type(error).__name__}: {error}"
    attempts = f"after {attempt + 1} attempt(s)"
    if policy.on_error == "raise":
        raise DatasetError(f"{reason} ({attempts})", root=dataset.url, shard=record.shard_path) from error
    counters.add("shards_skipped")
    log.warning("skipping shard %s of %s %s: %s", record.shard_path, dataset.url, attempts, reason)
    return None
