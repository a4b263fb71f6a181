"""Damaged or missing shards: retried with backoff, then skipped and counted, or raised naming the shard."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections import Counter

import numpy as np
import pytest
from loader_helpers import check_values, positions

from dreamstream.datasets import Dataset, DatasetError
from dreamstream.datasets.codec import npy_bytes
from dreamstream.datasets.loader import LoaderConfig, episode_hash, make_loader


def damage(corpus, how: str):
    """Damage the largest shard; returns its commit record."""
    record = max(Dataset(corpus.url).records(), key=lambda r: r.bytes)
    path = os.path.join(corpus.url, record.shard_path)
    if how == "truncated":
        with open(path, "r+b") as f:
            f.truncate(record.bytes // 2)
    elif how == "checksum":
        with open(path, "r+b") as f:  # same size, one byte of the first member's data flipped
            f.seek(600)
            byte = f.read(1)
            f.seek(600)
            f.write(bytes([byte[0] ^ 0xFF]))
    else:
        os.remove(path)
    return record


def config(**kwargs) -> LoaderConfig:
    return LoaderConfig(**{"batch_size": 4, "seq_len": 10, "retries": 2, "retry_backoff_s": 0.01,
                           "shuffle_buffer": 80, **kwargs})


# A shard whose size is not its record's is not read, nor retried (the object will not change); a missing
# shard or one failing its checksum may read well later.
RETRIES = {"truncated": 0, "checksum": 2, "missing": 2}


@pytest.mark.parametrize("how", ["truncated", "checksum", "missing"])
def test_bad_shard_is_retried_then_skipped_and_counted(corpus, how):
    record = damage(corpus, how)
    with make_loader(corpus.url, config(on_error="skip")) as loader:
        batches = list(loader)
        metrics = loader.metrics()
    assert metrics["shards_skipped"] == 1
    assert metrics["shard_retries"] == RETRIES[how]
    assert metrics["shards_read"] == len(Dataset(corpus.url).records()) - 1
    # Its rows are missing (as padding, never faked); every other step is there exactly once.
    lost = Counter((episode_hash(row.episode), row.start + i) for row in record.samples for i in range(row.steps))
    seen = Counter(p for batch in batches for p in positions(batch))
    assert seen == corpus.all_steps() - lost
    assert metrics["skipped_steps"] == record.steps
    for batch in batches:
        check_values(batch, corpus)
        assert bool(batch["reset"][~batch["valid"]].all())


@pytest.mark.parametrize(("how", "reason"), [("truncated", "bytes, the commit record says"),
                                              ("checksum", "sha256 mismatch"),
                                              ("missing", "shard is missing")])
def test_bad_shard_raises_naming_it_when_configured(corpus, how, reason):
    record = damage(corpus, how)
    with make_loader(corpus.url, config(on_error="raise")) as loader:
        with pytest.raises(DatasetError, match=reason) as caught:
            for _ in loader:
                pass
    assert caught.value.shard == record.shard_path
    attempts = RETRIES[how] + 1
    assert record.shard_path in str(caught.value) and f"after {attempts} attempt(s)" in str(caught.value)


def test_windows_mode_drops_a_bad_shard_from_its_buffer(corpus):
    damage(corpus, "checksum")
    with make_loader(corpus.url, config(mode="windows")) as loader:
        batches = list(loader)
        metrics = loader.metrics()
    assert metrics["shards_skipped"] == 1
    # Only the batches planned before the failure was known refer to it (as padding); later windows are
    # drawn from the other shards.
    padded = [i for i, batch in enumerate(batches) if not bool(batch["valid"].all())]
    assert len(padded) <= 2 and len(batches) == len(loader)
    for batch in batches:
        check_values(batch, corpus)


def rewrite_with_bad_sample(corpus):
    """Re-commit the largest shard with one sample's reward stored as float64 (checksums made to match):
    the damage is in what was written, so only decoding can find it."""
    record = max(Dataset(corpus.url).records(), key=lambda r: len(r.samples))
    path = os.path.join(corpus.url, record.shard_path)
    bad_key = record.samples[0].key
    out = io.BytesIO()
    with tarfile.open(path) as src, tarfile.open(fileobj=out, mode="w") as dst:
        for info in src:
            data = src.extractfile(info).read()
            if info.name == f"{bad_key}.reward.npy":
                data = npy_bytes(np.load(io.BytesIO(data)).astype(np.float64))
                info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
    data = out.getvalue()
    with open(path, "wb") as f:
        f.write(data)
    index = os.path.join(corpus.url, record.record_path)
    with open(index) as f:
        meta = json.load(f)
    meta.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    with open(index, "w") as f:
        json.dump(meta, f)
    return record, record.samples[0]


def test_a_sample_that_does_not_decode_is_skipped_alone_or_raised(corpus):
    record, row = rewrite_with_bad_sample(corpus)
    with make_loader(corpus.url, config(on_error="skip", shuffle_buffer=10_000)) as loader:
        seen = Counter(p for batch in loader for p in positions(batch))
        metrics = loader.metrics()
    assert metrics["chunks_skipped"] == 1 and metrics["shards_skipped"] == 0
    lost = Counter((episode_hash(row.episode), row.start + i) for i in range(row.steps))
    assert seen == corpus.all_steps() - lost  # only that sample's rows are missing
    with make_loader(corpus.url, config(on_error="raise")) as loader:
        with pytest.raises(DatasetError, match="dtype float64") as caught:
            for _ in loader:
                pass
    assert caught.value.shard == record.shard_path and caught.value.key == row.key
    assert caught.value.field == "reward" or "reward" in str(caught.value)
