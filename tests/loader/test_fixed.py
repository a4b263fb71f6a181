"""Fixed mode: exact coverage per epoch, on 1 and 2 DataLoader workers and in-process; equal counts per rank."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from loader_helpers import check_values, positions, write_corpus

from dreamstream.datasets import Dataset, DatasetError
from dreamstream.datasets.loader import LOADER_FIELDS, LoaderConfig, make_loader


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_one_epoch_covers_every_step_exactly_once(corpus, spec, workers):
    config = LoaderConfig(batch_size=4, seq_len=10, workers=workers, shuffle_buffer=60, seed=3)
    with make_loader(corpus.url, config) as loader:
        expected_batches = len(loader)
        seen = Counter()
        batches = 0
        for batch in loader:
            batches += 1
            assert set(batch) == set(spec.fields) | set(LOADER_FIELDS)
            assert batch["image"].shape == (10, 4, 8, 8, 3) and str(batch["image"].dtype) == "torch.uint8"
            assert str(batch["action"].dtype) == "torch.int64" and batch["action"].shape == (10, 4)
            assert str(batch["reset"].dtype) == "torch.bool"
            check_values(batch, corpus)
            # An episode's first row always starts from a zero state.
            assert bool(batch["reset"][batch["is_first"]].all())
            seen.update(positions(batch))
        metrics = loader.metrics()
    assert batches == expected_batches
    assert seen == corpus.all_steps()  # every step of the corpus exactly once
    assert metrics["steps"] == corpus.steps
    assert metrics["padding_steps"] == batches * 40 - corpus.steps
    assert metrics["shards_read"] == len(Dataset(corpus.url).records())
    assert metrics["epoch"] == 1


def test_epochs_are_reshuffled_and_each_is_complete(corpus):
    config = LoaderConfig(batch_size=4, seq_len=10, shuffle_buffer=60)
    with make_loader(corpus.url, config) as loader:
        epochs = []
        for _ in range(2):
            order = [p for batch in loader for p in positions(batch)]
            assert Counter(order) == corpus.all_steps()
            epochs.append(order)
    assert epochs[0] != epochs[1]


def test_same_seed_same_batches_other_seed_other_order(corpus):
    def first_batches(seed):
        config = LoaderConfig(batch_size=3, seq_len=7, seed=seed, shuffle_buffer=50)
        with make_loader(corpus.url, config) as loader:
            return [positions(batch) for _, batch in zip(range(5), loader, strict=False)]

    assert first_batches(1) == first_batches(1)
    assert first_batches(1) != first_batches(2)


def test_ranks_get_equal_batch_counts_and_disjoint_complete_shares(tmp_path, spec):
    # Uneven shards (episodes of very different lengths) so the ranks' natural counts differ.
    lengths = [3, 150, 4, 5, 120, 6, 7, 90, 8, 9]
    corpus = write_corpus(str(tmp_path / "c"), spec, lengths, shard_max_bytes=3_000)
    config = LoaderConfig(batch_size=2, seq_len=8, shuffle_buffer=40)
    loaders = [make_loader(corpus.url, config, rank=rank, world_size=2) for rank in range(2)]
    counts, steps, seen = [], [], Counter()
    for loader in loaders:
        batches = list(loader)
        counts.append(len(batches))
        steps.append(loader.metrics()["steps"])
        assert len(batches) == len(loader)
        for batch in batches:
            seen.update(positions(batch))
        loader.close()
    assert steps[0] != steps[1]  # the ranks hold different amounts of data...
    assert counts[0] == counts[1]  # ...and still yield the same number of batches (the short one pads)
    assert seen == corpus.all_steps()


def test_fewer_shards_than_readers_is_a_clear_error(tmp_path, spec):
    corpus = write_corpus(str(tmp_path / "c"), spec, [20, 20], shard_max_bytes=10**9)
    shards = len(Dataset(corpus.url).records())
    assert shards == 1
    with pytest.raises(DatasetError, match=r"1 committed shard\(s\) for 2 readers \(world size 1 x 2 loader"):
        make_loader(corpus.url, LoaderConfig(batch_size=4, workers=2))
    with pytest.raises(DatasetError, match=r"for 4 readers \(world size 2 x 2"):
        make_loader(corpus.url, LoaderConfig(batch_size=4, workers=2), rank=1, world_size=2)


def test_windows_are_uniform_consecutive_and_counted_per_epoch(corpus):
    config = LoaderConfig(batch_size=4, seq_len=12, mode="windows", shuffle_buffer=200, seed=5)
    with make_loader(corpus.url, config) as loader:
        batches = list(loader)
    assert len(batches) == -(-corpus.steps // 48)  # the epoch holds the corpus' steps, in windows
    starts = Counter()
    for batch in batches:
        check_values(batch, corpus)
        assert bool(batch["valid"].all())
        assert bool(batch["reset"][0].all())  # each window starts from a zero state
        ids, steps, reset = (batch[k].numpy() for k in ("episode_id", "episode_step", "reset"))
        same = (ids[1:] == ids[:-1]) & (steps[1:] == steps[:-1] + 1)
        assert (same | reset[1:]).all()  # consecutive rows of one episode, or a reset
        assert (~reset[1:] | (steps[1:] == 0) | ~same).all()
        starts.update(zip(ids[0].tolist(), steps[0].tolist(), strict=True))
    # Starting points spread over the corpus, not stuck at chunk starts.
    assert len(starts) > 0.5 * len(batches) * 4
    assert np.mean([start not in corpus.chunk_starts for start in starts]) > 0.5
