"""Reward statistics stay bounded in memory however many distinct rewards and chunks they see, and merge in
any order to the same counts (pipelines.accumulators.RewardStats, FineHistogram)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from bounded import bounded

from dreamstream.pipelines.accumulators import FINE_BINS, MAX_DISTINCT, FineHistogram, RewardStats, fine_exponent


def chunks(count: int, rows: int = 200, seed: int = 0) -> list[np.ndarray]:
    """Continuous rewards (every value distinct), each chunk over a range of its own."""
    rng = np.random.default_rng(seed)
    return [rng.normal(rng.uniform(-50, 50), rng.uniform(0.1, 5), rows).astype(np.float32) for _ in range(count)]


def retained(stats: RewardStats) -> int:
    """Bytes of the arrays and exact counts it keeps."""
    values = 0 if stats.values is None else len(stats.values)
    return stats.fine.counts.nbytes + stats.moments.mean.nbytes * 4 + values * 16


def test_size_stays_bounded_over_many_chunks_of_distinct_rewards():
    parts = chunks(3000)
    stats = RewardStats()
    for part in parts[:10]:
        stats.update(part)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        with bounded(memory_mb=4, seconds=60):
            for part in parts[10:]:
                stats.update(part)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 64 * 1024  # 2990 more chunks kept (almost) nothing more
    assert stats.values is None and stats.fine.counts.shape == (FINE_BINS,)
    assert retained(stats) <= FINE_BINS * 8 + 64
    out = stats.to_json()
    assert sum(out["counts"]) == stats.moments.n == 3000 * 200 and len(out["edges"]) == 41


def test_merges_of_many_tasks_stay_bounded_and_agree_in_any_order():
    parts = chunks(400, rows=50, seed=1)
    tasks = []
    for i, part in enumerate(parts):
        task = RewardStats()
        task.update(np.round(part) if i % 3 == 0 else part)  # some tasks still hold exact counts
        tasks.append(task)
    results = []
    for order in (range(len(tasks)), reversed(range(len(tasks))), np.random.default_rng(2).permutation(len(tasks))):
        total = RewardStats()
        for i in order:
            total.merge(tasks[i])
        assert retained(total) <= FINE_BINS * 8 + 64
        results.append(total)
    first = results[0]
    for other in results[1:]:
        np.testing.assert_array_equal(other.fine.counts, first.fine.counts)
        assert (other.fine.exponent, other.fine.first) == (first.fine.exponent, first.fine.first)
        assert other.to_json()["counts"] == first.to_json()["counts"]
    # the coarse histogram is np.histogram's but for the values of the fine bin that holds each coarse edge
    everything = np.concatenate([np.round(p) if i % 3 == 0 else p for i, p in enumerate(parts)]).astype(np.float64)
    out = first.to_json()
    edges = np.array(out["edges"])
    expected, _ = np.histogram(everything, bins=edges)
    fine = first.fine
    at_edge = fine.counts[np.clip(np.floor(edges / 2.0**fine.exponent).astype(int) - fine.first, 0, FINE_BINS - 1)]
    assert sum(out["counts"]) == len(everything)
    assert (np.abs(np.array(out["counts"]) - expected) <= at_edge[:-1] + at_edge[1:]).all()
    assert np.abs(np.array(out["counts"]) - expected).sum() < 0.05 * len(everything)


def test_exact_counts_are_kept_up_to_max_distinct():
    stats = RewardStats()
    values = np.arange(MAX_DISTINCT, dtype=np.float32)
    stats.update(np.repeat(values, 3))
    out = stats.to_json()
    assert out["values"] == values.tolist() and out["counts"] == [3] * MAX_DISTINCT
    stats.update(np.array([0.5], np.float32))  # one more distinct value: a histogram from here on
    out = stats.to_json()
    assert "values" not in out and sum(out["counts"]) == 3 * MAX_DISTINCT + 1


def test_one_chunk_with_more_distinct_values_than_max_never_builds_exact_counts():
    stats = RewardStats()
    stats.update(np.linspace(0, 1, 100_000))
    assert stats.values is None and int(stats.fine.counts.sum()) == 100_000


@pytest.mark.parametrize(("lo", "hi"), [(0.0, 0.0), (1e6, 1e6 + 1e-3), (-3e38, 3e38), (1e-12, 2e-12), (-1.0, 1.0)])
def test_bins_are_exact_on_any_range(lo, hi):
    values = np.linspace(lo, hi, 5000)
    histogram = FineHistogram()
    histogram.add(values)
    exponent = fine_exponent(lo, hi)
    assert histogram.exponent == exponent and int(histogram.counts.sum()) == 5000
    widths = 2.0**exponent
    assert np.floor(hi / widths) - np.floor(lo / widths) < FINE_BINS
    # every value in the bin that holds it: bin edges are the multiples of the width from `first` on
    edges = (histogram.first + np.arange(FINE_BINS + 1)) * widths
    expected, _ = np.histogram(values, bins=edges)
    np.testing.assert_array_equal(expected, histogram.counts)
