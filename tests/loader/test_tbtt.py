"""TBTT streams: row b of batch k+1 continues row b of batch k; resets exactly at episode starts, drawn random
resets, and chunk starts whose predecessor is not available."""

from __future__ import annotations

import numpy as np

from dreamstream.datasets.loader import LoaderConfig, make_loader


def stream_cells(loader):
    """Per batch: (episode_id, episode_step, reset, valid, is_first) as [T, B] arrays."""
    keys = ("episode_id", "episode_step", "reset", "valid", "is_first")
    return [tuple(batch[k].numpy() for k in keys) for batch in loader]


def check_continuity(batches):
    """Where a row does not reset, it continues the previous row cell (same episode, next step), across
    batch boundaries too. Returns the resets that are not episode starts, as (batch, t, (episode, step))."""
    rows = batches[0][0].shape[1]
    previous = [None] * rows  # (episode, step) of the last cell of each row
    unexplained = []
    for k, (ids, steps, reset, valid, first) in enumerate(batches):
        for b in range(rows):
            for t in range(ids.shape[0]):
                if not valid[t, b]:
                    assert reset[t, b]  # padding never carries state
                    previous[b] = None
                    continue
                if reset[t, b]:
                    if not first[t, b]:
                        unexplained.append((k, t, (int(ids[t, b]), int(steps[t, b]))))
                else:
                    assert previous[b] == (ids[t, b], steps[t, b] - 1), (k, t, b)
                previous[b] = (ids[t, b], steps[t, b])
    return unexplained


def test_rows_continue_and_reset_only_at_episode_starts(corpus):
    config = LoaderConfig(batch_size=4, seq_len=10, reset_interval=0, shuffle_buffer=10_000)
    with make_loader(corpus.url, config) as loader:
        batches = stream_cells(loader)
        metrics = loader.metrics()
    assert check_continuity(batches) == []  # every reset is an episode's first row
    assert metrics["chunk_resets"] == 0 and metrics.get("random_resets", 0) == 0
    # Chunked episodes continued across their chunk boundaries without a reset.
    boundaries = sum(1 for ids, steps, reset, valid, _ in batches for t, b in zip(*np.nonzero(valid & ~reset),
                                                                                   strict=True)
                     if (ids[t, b], steps[t, b]) in corpus.chunk_starts)
    assert boundaries == metrics["chunks_continued"] > 20


def test_random_resets_fall_on_batch_starts_at_the_configured_rate(corpus):
    config = LoaderConfig(batch_size=4, seq_len=10, reset_interval=30, shuffle_buffer=10_000, seed=1)
    with make_loader(corpus.url, config) as loader:
        batches = stream_cells(loader)
        metrics = loader.metrics()
    random = check_continuity(batches)
    assert all(t == 0 for _, t, _ in random)  # drawn resets happen only where a batch starts
    assert len(random) == metrics["random_resets"]
    # p = T / reset_interval = 1/3 per row and batch (fewer counted where a row starts an episode anyway).
    draws = 4 * len(batches)
    assert 0.15 * draws < len(random) < 0.4 * draws


def test_small_buffer_resets_at_chunk_starts_without_dropping_rows(corpus):
    config = LoaderConfig(batch_size=4, seq_len=10, reset_interval=0, shuffle_buffer=30, seed=2)
    with make_loader(corpus.url, config) as loader:
        batches = stream_cells(loader)
        metrics = loader.metrics()
    broken = check_continuity(batches)
    # The next chunk was not buffered: the state resets at a chunk start (never elsewhere)...
    assert broken and all(cell in corpus.chunk_starts for _, _, cell in broken)
    assert len(broken) == metrics["chunk_resets"]
    # ...and every row is still there exactly once.
    assert metrics["steps"] == corpus.steps
    cells = np.concatenate([np.stack([ids[valid], steps[valid]], 1) for ids, steps, _, valid, _ in batches])
    assert len(np.unique(cells, axis=0)) == corpus.steps


def test_rows_continue_across_batches_with_two_workers(corpus):
    # Each worker streams its own rows; the loader joins them, so row b still continues row b. (A chunk
    # whose predecessor went to the other worker starts with a reset.)
    config = LoaderConfig(batch_size=4, seq_len=10, workers=2, reset_interval=0, shuffle_buffer=10_000)
    with make_loader(corpus.url, config) as loader:
        batches = stream_cells(loader)
        metrics = loader.metrics()
    broken = check_continuity(batches)
    assert all(cell in corpus.chunk_starts for _, _, cell in broken)
    assert len(broken) == metrics["chunk_resets"] and metrics["chunks_continued"] > 10
