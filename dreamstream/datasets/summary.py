"""Dataset summary from commit records alone (no shard is opened): what `dreamstream inspect` prints."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np

from dreamstream.datasets.records import CommitRecord


def episode_returns(records: list[CommitRecord]) -> dict[str, tuple[float, int, bool, bool]]:
    """Episode id -> (return, length, complete, terminal); complete means its last chunk is committed."""
    totals: dict[str, list] = defaultdict(lambda: [0.0, 0, False, False])
    for record in records:
        for row in record.samples:
            entry = totals[row.episode]
            entry[0] += row.reward_sum
            entry[1] += row.steps
            entry[2] |= row.is_last
            entry[3] |= row.is_terminal
    return {episode: tuple(values) for episode, values in totals.items()}


def summarize(records: list[CommitRecord]) -> dict[str, Any]:
    episodes = episode_returns(records)
    complete = [v for v in episodes.values() if v[2]]
    returns = np.array([v[0] for v in complete], dtype=np.float64)
    lengths = np.array([v[1] for v in complete], dtype=np.int64)

    def describe(values: np.ndarray) -> dict[str, float] | None:
        if len(values) == 0:
            return None
        return {"mean": float(values.mean()), "std": float(values.std()), "min": float(values.min()),
                "max": float(values.max())}

    rows = [row for record in records for row in record.samples]
    return {
        "shards": len(records),
        "bytes": sum(r.bytes for r in records),
        "samples": len(rows),
        "steps": sum(row.steps for row in rows),
        "episodes": len(episodes),
        "complete_episodes": len(complete),
        "terminated": sum(1 for v in complete if v[3]),
        "truncated": sum(1 for v in complete if not v[3]),
        "return": describe(returns),
        "length": describe(lengths.astype(np.float64)),
        "policies": dict(Counter(f"{row.policy}@{row.policy_version}" for row in rows)),
        "writers": len({r.writer for r in records}),
    }
