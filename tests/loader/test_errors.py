"""Damaged or missing shards: retried with backoff, then skipped and counted, or raised naming the shard."""

from __future__ import annotations

import os
from collections import Counter

import pytest
from loader_helpers import check_values, positions

from dreamstream.datasets import Dataset, DatasetError
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
    return LoaderConfig(batch_size=4, seq_len=10, retries=2, retry_backoff_s=0.01, shuffle_buffer=80, **kwargs)


@pytest.mark.parametrize("how", ["truncated", "checksum", "missing"])
def test_bad_shard_is_retried_then_skipped_and_counted(corpus, how):
    record = damage(corpus, how)
    with make_loader(corpus.url, config(on_error="skip")) as loader:
        batches = list(loader)
        metrics = loader.metrics()
    assert metrics["shards_skipped"] == 1
    assert metrics["shard_retries"] == 2
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
    assert record.shard_path in str(caught.value) and "after 3 attempt(s)" in str(caught.value)


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
