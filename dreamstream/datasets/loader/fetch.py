"""Our shard opener: fsspec reads with retries and backoff, checksum checks, then webdataset's tar iterators
and our pickle-free `decode_sample`.

webdataset 1.0.2 has no s3:// opener and sends gs:// to a `gsutil` sub-process; the loader never goes
through `webdataset.gopen` at all: it reads each shard whole with fsspec (`Dataset.shard_bytes`, which also
checks size and sha256 against the commit record), and hands the bytes to webdataset's
`tar_file_expander` + `group_by_keys`. `register_gopen()` additionally points webdataset's own
`gopen_schemes` for s3, gs, gcs and memory at fsspec, so a plain `webdataset.WebDataset("s3://...")` in
user code reads through fsspec instead of a shell pipe.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import fsspec
import numpy as np
from webdataset.filters import reraise_exception
from webdataset.gopen import gopen_schemes
from webdataset.tariterators import group_by_keys, tar_file_expander

from dreamstream.datasets.errors import DatasetError
from dreamstream.datasets.reader import Dataset, check_chunk_rows, decode_sample
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


def parse_shard(data: bytes, record: CommitRecord, dataset: Dataset) -> dict[str, dict[str, np.ndarray]]:
    """Every sample of a shard's bytes: key -> arrays, checked against the spec and the commit record."""
    rows = {row.key: row for row in record.samples}
    where = record.shard_path
    out: dict[str, dict[str, np.ndarray]] = {}
    files = tar_file_expander([{"url": where, "stream": io.BytesIO(data)}], handler=reraise_exception)
    try:
        for sample in group_by_keys(files, lcase=False, handler=reraise_exception):
            key = sample["__key__"]
            row = rows.pop(key, None)
            if row is None:
                raise DatasetError("sample is not listed in the commit record (or appears twice)",
                                   root=dataset.url, shard=where, key=key)
            meta, arrays = decode_sample(sample, dataset.spec, where)
            check_chunk_rows(row, meta, arrays, where)
            out[key] = arrays
    except DatasetError:
        raise
    except Exception as exc:  # tarfile / webdataset errors on damaged bytes
        raise DatasetError(f"cannot parse the tar: {exc.args[0] if exc.args else exc!r}", root=dataset.url,
                           shard=where) from exc
    if rows:
        raise DatasetError(f"samples {sorted(rows)} are in the commit record but not in the shard",
                           root=dataset.url, shard=where)
    return out


def load_shard(dataset: Dataset, record: CommitRecord, policy: FetchPolicy,
               counters: FetchCounters) -> dict[str, dict[str, np.ndarray]] | None:
    """Read, verify and decode a shard, retrying with backoff; None when it failed and is skipped.

    Reading (and, without `verify`, decoding: a short read looks like damage) is retried; a shard whose
    bytes matched its checksum but does not decode is damaged at the source and is not retried.
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
            arrays = parse_shard(data, record, dataset)
        except DatasetError as exc:
            error = exc
            if policy.verify:
                break
            continue
        counters.add("shards_read")
        counters.add("bytes_read", len(data))
        return arrays
    assert error is not None
    reason = error.reason if isinstance(error, DatasetError) else f"{type(error).__name__}: {error}"
    attempts = f"after {attempt + 1} attempt(s)"
    if policy.on_error == "raise":
        raise DatasetError(f"{reason} ({attempts})", root=dataset.url, shard=record.shard_path) from error
    counters.add("shards_skipped")
    log.warning("skipping shard %s of %s %s: %s", record.shard_path, dataset.url, attempts, reason)
    return None
