"""Follow mode: shards committed while the loader runs are read within the re-list interval, each as new
exactly once (also across a resume); otherwise the loader replays recent shards."""

from __future__ import annotations

import time

import numpy as np
import pytest
from loader_helpers import check_values, write_corpus

from dreamstream.datasets import Dataset, DatasetCard, EpisodeWriter, WriterConfig
from dreamstream.datasets.loader import LoaderConfig, episode_hash, make_loader
from dreamstream.datasets.synthetic import random_episode

INTERVAL = 0.5


def commit_episode(url, spec, steps, seed):
    card = DatasetCard.create(spec, env_id="Test-v0")
    with EpisodeWriter(url, card, WriterConfig(chunk_steps=16)) as writer:
        writer.add_episode(random_episode(spec, steps, np.random.default_rng(seed)), policy="late")
    (record,) = writer.committed
    return record


def follow_config(**kwargs) -> LoaderConfig:
    return LoaderConfig(batch_size=2, seq_len=5, follow=True, relist_interval_s=INTERVAL, shuffle_buffer=20,
                        prefetch=1, **kwargs)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_shard_committed_later_is_read_within_the_relist_interval(tmp_path, spec, workers):
    corpus = write_corpus(str(tmp_path / "live"), spec, [30, 25, 40, 20], shard_max_bytes=10**9)
    initial = len(Dataset(corpus.url).records())
    with make_loader(corpus.url, follow_config(workers=workers)) as loader:
        batches = iter(loader)
        for _ in range(20):  # the loader runs (and replays) before the new shard exists
            check_values(next(batches), corpus)
        record = commit_episode(corpus.url, spec, 33, seed=99)
        new_episode = episode_hash(record.samples[0].episode)
        committed = time.monotonic()
        seen_at = arrived_at = None
        while time.monotonic() - committed < INTERVAL + 10:
            batch = next(batches)
            if seen_at is None and loader.metrics()["follow_new_shards"] == initial + 1:
                seen_at = time.monotonic() - committed
            if bool((batch["episode_id"] == new_episode).any()):
                arrived_at = time.monotonic() - committed
                break
        metrics = loader.metrics()
        state = loader.state_dict()
    assert arrived_at is not None, "the new shard never reached a batch"
    # Listed and read within the interval (plus the batches already prepared ahead, and a busy machine).
    assert seen_at is not None and seen_at < INTERVAL + 3.0
    assert metrics["follow_new_shards"] == initial + 1  # each shard read as new once, never again
    assert metrics["follow_replays"] > 0
    assert 0 <= metrics["follow_lag_s"] < INTERVAL + 3.0
    assert record.name in state["seen"] and len(state["seen"]) == initial + 1


def test_no_shard_is_new_twice_across_a_resume(tmp_path, spec):
    corpus = write_corpus(str(tmp_path / "live"), spec, [30, 25, 40, 20], shard_max_bytes=10**9)
    with make_loader(corpus.url, follow_config()) as loader:
        for _, _ in zip(range(10), loader, strict=False):
            pass
        state = loader.state_dict()
    assert len(state["seen"]) == len(Dataset(corpus.url).records())
    record = commit_episode(corpus.url, spec, 12, seed=5)
    with make_loader(corpus.url, follow_config()) as loader:
        loader.load_state_dict(state)
        new_episode = episode_hash(record.samples[0].episode)
        found = False
        for _, batch in zip(range(40), loader, strict=False):
            found |= bool((batch["episode_id"] == new_episode).any())
        metrics = loader.metrics()
    assert found
    assert metrics["follow_new_shards"] == len(state["seen"]) + 1  # only the one committed since


def test_replay_draws_only_from_the_newest_window(tmp_path, spec):
    url = str(tmp_path / "live")
    records = [commit_episode(url, spec, 40, seed=i) for i in range(4)]
    newest = {episode_hash(r.samples[0].episode) for r in records[-2:]}
    with make_loader(url, follow_config(replay_window=80, mode="windows")) as loader:
        batches = [batch for _, batch in zip(range(60), loader, strict=False)]
    # The first batches read every shard once as new; afterwards only the newest 80 steps are replayed.
    late = {int(i) for batch in batches[30:] for i in batch["episode_id"].unique()}
    assert late <= newest
