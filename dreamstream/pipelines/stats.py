"""`dreamstream stats`: dataset statistics, from commit records first and from shards only where needed.

Phase 1 (client, no shard opened): episodes, steps, returns, lengths, terminations and truncations,
per policy version and per writer, all from the commit records' sample rows (the episode index,
dreamstream.datasets.episodes, which says which episodes are complete).
Phase 2 (one Dask task per shard): action and reward histograms, and with `deep` per-field observation
statistics; each task returns small mergeable accumulators (dreamstream.pipelines.accumulators).
Definitions of every field of the result are in docs/pipelines.md.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dreamstream.datasets import CommitRecord, Dataset
from dreamstream.datasets.episodes import Episode, EpisodeIndex, policy_key
from dreamstream.datasets.reader import decode_chunk, split_shard
from dreamstream.pipelines.accumulators import ImageStats, ShardStats, describe, histogram
from dreamstream.pipelines.cluster import Runner
from dreamstream.pipelines.shards import task_dataset, task_url


def _group(episodes: list[Episode], steps: int) -> dict[str, Any]:
    complete = [e for e in episodes if e.complete]
    return {
        "episodes": len(episodes),
        "complete": len(complete),
        "steps": steps,
        "terminated": sum(1 for e in complete if e.terminated),
        "truncated": sum(1 for e in complete if e.truncated),
        "return": describe(np.array([e.ret for e in complete])),
        "length": describe(np.array([e.steps for e in complete])),
    }


def record_stats(records: list[CommitRecord]) -> dict[str, Any]:
    """Everything that commit records alone tell: no shard is read."""
    index = EpisodeIndex(records)
    complete = index.complete
    returns = np.array([e.ret for e in complete])
    lengths = np.array([e.steps for e in complete])
    steps_by_policy: dict[str, int] = defaultdict(int)
    steps_by_writer: dict[str, int] = defaultdict(int)
    for record in records:
        for row in record.samples:
            steps_by_policy[policy_key(row.policy, row.policy_version)] += row.steps
            steps_by_writer[record.writer] += row.steps
    by_policy: dict[str, list[Episode]] = defaultdict(list)
    by_writer: dict[str, list[Episode]] = defaultdict(list)
    for e in index:
        by_policy[policy_key(e.policy, e.policy_version)].append(e)
        by_writer[e.writer].append(e)

    def version_order(key: str) -> tuple[str, int]:
        name, _, version = key.rpartition("@")
        return name, int(version) if version.lstrip("-").isdigit() else 0

    return {
        "shards": len(records),
        "bytes": sum(r.bytes for r in records),
        "samples": sum(len(r.samples) for r in records),
        "steps": sum(r.steps for r in records),
        "episodes": {
            "total": len(index),
            "complete": len(complete),
            "incomplete": len(index.partial),
            "terminated": sum(1 for e in complete if e.terminated),
            "truncated": sum(1 for e in complete if e.truncated),
            "mixed_policy": sum(1 for e in index if len(e.policies) > 1),
        },
        "return": describe(returns),
        "length": describe(lengths),
        "return_histogram": histogram(returns),
        "length_histogram": histogram(lengths),
        "by_policy": {key: _group(by_policy.get(key, []), steps_by_policy[key])
                      for key in sorted(set(by_policy) | set(steps_by_policy), key=version_order)},
        "by_writer": {key: _group(by_writer.get(key, []), steps_by_writer.get(key, 0)) for key in sorted(by_writer)},
    }


def lineage_check(dataset: Dataset, summary: dict[str, Any]) -> dict[str, Any] | None:
    """For a built corpus: do the committed episodes and steps match what its card's lineage promises?"""
    lineage = dataset.card.lineage
    if not isinstance(lineage, dict) or "expected" not in lineage:
        return None
    expected = lineage["expected"]
    found = {"episodes": summary["episodes"]["complete"], "steps": summary["steps"]}
    return {"expected": expected, "found": found,
            "complete": all(found.get(k) == v for k, v in expected.items() if k in found)}


def shard_stats_task(url: str, record: dict[str, Any], deep: bool, checksum: bool = False) -> ShardStats:
    """One task: the action, reward and (deep) observation statistics of one shard, and the seconds it
    spent reading, decoding and accumulating (`ShardStats.seconds`).

    Runs on a worker: opens the dataset from its URL there (credentials from the worker's environment).
    The shard's size, tar structure, spec and agreement with its record are checked as by every reader;
    its sha256, checked when it was committed, only with `checksum` (`stats --verify`).
    """
    dataset = task_dataset(url)
    commit = CommitRecord.from_json(record)
    stats = ShardStats(dataset.spec, deep)
    fields = None if deep else {"action"}
    started = time.perf_counter()
    samples = split_shard(dataset.shard_bytes(commit, checksum=checksum), commit, url)
    rows = {row.key: row for row in commit.samples}
    stats.seconds["read"] += time.perf_counter() - started
    for key, sample in samples.items():
        started = time.perf_counter()
        arrays = decode_chunk(sample, rows[key], dataset.spec, commit.shard_path, fields)
        decoded = time.perf_counter()
        stats.update(arrays)
        stats.seconds["decode"] += decoded - started
        stats.seconds["accumulate"] += time.perf_counter() - decoded
    return stats


@dataclass
class StatsResult:
    """The JSON summary, and the arrays that only the HTML report uses (mean frames)."""

    summary: dict[str, Any]
    mean_frames: dict[str, np.ndarray] = field(default_factory=dict)


def compute_stats(url: str, runner: Runner, deep: bool = False, shards: bool = True,
                  verify: bool = False) -> StatsResult:
    """Statistics of the dataset at `url`; `shards=False` stops after the commit records; `verify` also
    checks every shard's sha256 against its commit record."""
    started = time.perf_counter()
    dataset = Dataset(url)
    card = dataset.card
    records = dataset.records()
    summary: dict[str, Any] = {
        "root": url,
        "env": card.env_id,
        "preset": card.preset,
        "deep": deep,
        "verify": verify,
        **record_stats(records),
    }
    check = lineage_check(dataset, summary)
    if check is not None:
        summary["lineage"] = check
    timing = {"records_s": time.perf_counter() - started}
    result = StatsResult(summary)
    if shards and records:
        started = time.perf_counter()
        total: ShardStats | None = None
        items = [(task_url(url), record.to_json(), deep, verify) for record in records]
        merge_s = 0.0
        for _, stats in runner.map(shard_stats_task, items, desc="stats" + (" (deep)" if deep else "")):
            merging = time.perf_counter()
            if total is None:
                total = stats
            else:
                total.merge(stats)
            merge_s += time.perf_counter() - merging
        assert total is not None
        timing["shards_s"] = time.perf_counter() - started
        # summed over tasks (worker seconds), and the client's merge
        timing["stages_s"] = {**total.seconds, "merge": merge_s}
        summary["rows_read"] = total.rows
        summary["transitions"] = total.transitions
        summary["actions"] = total.actions.to_json()
        summary["rewards"] = total.rewards.to_json()
        if deep:
            summary["observations"] = {name: s.to_json() for name, s in total.fields.items()}
            result.mean_frames = {name: s.mean_frame() for name, s in total.fields.items()
                                  if isinstance(s, ImageStats)}
    summary["seconds"] = timing
    summary["workers"] = runner.workers
    return result
