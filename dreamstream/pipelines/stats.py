"""`dreamstream stats`: dataset statistics, from commit records first and from shards only where needed.

Phase 1 (client, no shard opened): episodes, steps, returns, lengths, terminations and truncations,
per policy version and per writer, all from the commit records' sample rows.
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
from dreamstream.pipelines.accumulators import ImageStats, ShardStats, describe, histogram
from dreamstream.pipelines.cluster import ClusterConfig, Runner, open_runner
from dreamstream.pipelines.shards import iter_chunks, task_dataset, task_url


@dataclass
class EpisodeInfo:
    """One episode as the commit records describe it."""

    episode: str
    steps: int = 0
    ret: float = 0.0
    chunks: list[int] = field(default_factory=list)
    has_first: bool = False
    has_last: bool = False
    terminal: bool = False
    policy: str = ""  # "<name>@<version>" of the episode's first chunk
    policies: set[str] = field(default_factory=set)
    writer: str = ""

    @property
    def complete(self) -> bool:
        """Every chunk from the first (is_first) to the last (is_last) is committed."""
        return self.has_first and self.has_last and sorted(self.chunks) == list(range(len(self.chunks)))


def policy_key(name: str, version: int) -> str:
    return f"{name}@{version}"


def episode_table(records: list[CommitRecord]) -> dict[str, EpisodeInfo]:
    """Episode id -> EpisodeInfo, from the sample rows of the commit records."""
    episodes: dict[str, EpisodeInfo] = {}
    for record in records:
        for row in record.samples:
            info = episodes.get(row.episode)
            if info is None:
                info = episodes[row.episode] = EpisodeInfo(row.episode)
            info.steps += row.steps
            info.ret += row.reward_sum
            info.chunks.append(row.chunk)
            key = policy_key(row.policy, row.policy_version)
            info.policies.add(key)
            if row.chunk == 0:
                info.policy, info.writer = key, record.writer
            info.has_first |= row.is_first
            info.has_last |= row.is_last
            info.terminal |= row.is_terminal
    for info in episodes.values():  # an episode whose first chunk is missing: label it by what we have
        if not info.policy:
            info.policy = sorted(info.policies)[0]
    return episodes


def _group(episodes: list[EpisodeInfo], steps: dict[str, int]) -> dict[str, Any]:
    complete = [e for e in episodes if e.complete]
    return {
        "episodes": len(episodes),
        "complete": len(complete),
        "steps": steps,
        "terminated": sum(1 for e in complete if e.terminal),
        "truncated": sum(1 for e in complete if not e.terminal),
        "return": describe(np.array([e.ret for e in complete])),
        "length": describe(np.array([e.steps for e in complete])),
    }


def record_stats(records: list[CommitRecord]) -> dict[str, Any]:
    """Everything that commit records alone tell: no shard is read."""
    episodes = episode_table(records)
    complete = [e for e in episodes.values() if e.complete]
    returns = np.array([e.ret for e in complete])
    lengths = np.array([e.steps for e in complete])
    steps_by_policy: dict[str, int] = defaultdict(int)
    steps_by_writer: dict[str, int] = defaultdict(int)
    for record in records:
        for row in record.samples:
            steps_by_policy[policy_key(row.policy, row.policy_version)] += row.steps
            steps_by_writer[record.writer] += row.steps
    by_policy: dict[str, list[EpisodeInfo]] = defaultdict(list)
    by_writer: dict[str, list[EpisodeInfo]] = defaultdict(list)
    for e in episodes.values():
        by_policy[e.policy].append(e)
        by_writer[e.writer or "?"].append(e)

    def version_order(key: str) -> tuple[str, int]:
        name, _, version = key.rpartition("@")
        return name, int(version) if version.lstrip("-").isdigit() else 0

    return {
        "shards": len(records),
        "bytes": sum(r.bytes for r in records),
        "samples": sum(len(r.samples) for r in records),
        "steps": sum(r.steps for r in records),
        "episodes": {
            "total": len(episodes),
            "complete": len(complete),
            "incomplete": len(episodes) - len(complete),
            "terminated": sum(1 for e in complete if e.terminal),
            "truncated": sum(1 for e in complete if not e.terminal),
            "mixed_policy": sum(1 for e in episodes.values() if len(e.policies) > 1),
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


def shard_stats_task(url: str, record: dict[str, Any], deep: bool) -> ShardStats:
    """One task: the action, reward and (deep) observation statistics of one shard.

    Runs on a worker: opens the dataset from its URL there (credentials from the worker's environment).
    """
    dataset = task_dataset(url)
    commit = CommitRecord.from_json(record)
    stats = ShardStats(dataset.spec, deep)
    fields = None if deep else {"action"}
    for chunk in iter_chunks(dataset, commit, verify=True, fields=fields):
        stats.update(chunk.arrays)
    return stats


@dataclass
class StatsResult:
    """The JSON summary, and the arrays that only the HTML report uses (mean frames)."""

    summary: dict[str, Any]
    mean_frames: dict[str, np.ndarray] = field(default_factory=dict)


def compute_stats(url: str, runner: Runner, deep: bool = False, shards: bool = True) -> StatsResult:
    """Statistics of the dataset at `url`; `shards=False` stops after the commit records."""
    started = time.perf_counter()
    dataset = Dataset(url)
    card = dataset.card
    records = dataset.records()
    summary: dict[str, Any] = {
        "root": url,
        "env": card.env_id,
        "preset": card.preset,
        "deep": deep,
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
        items = [(task_url(url), record.to_json(), deep) for record in records]
        for _, stats in runner.map(shard_stats_task, items, desc="stats" + (" (deep)" if deep else "")):
            if total is None:
                total = stats
            else:
                total.merge(stats)
        assert total is not None
        timing["shards_s"] = time.perf_counter() - started
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


def run_stats(url: str, config: ClusterConfig, deep: bool = False) -> StatsResult:
    """compute_stats on a cluster opened for the purpose (closed afterwards)."""
    with open_runner(config) as runner:
        return compute_stats(url, runner, deep=deep)
