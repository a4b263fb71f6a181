"""Dataset summary from commit records alone (no shard is opened): what `dreamstream inspect` prints.

Episodes, and which of them are complete, come from the episode index (dreamstream.datasets.episodes).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from dreamstream.datasets.episodes import EpisodeIndex, policy_key
from dreamstream.datasets.records import CommitRecord


def summarize(records: list[CommitRecord]) -> dict[str, Any]:
    index = EpisodeIndex(records)
    complete = index.complete
    returns = np.array([e.ret for e in complete], dtype=np.float64)
    lengths = np.array([e.steps for e in complete], dtype=np.float64)

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
        "episodes": len(index),
        "complete_episodes": len(complete),
        "terminated": sum(1 for e in complete if e.terminated),
        "truncated": sum(1 for e in complete if e.truncated),
        "return": describe(returns),
        "length": describe(lengths),
        "policies": dict(Counter(policy_key(row.policy, row.policy_version) for row in rows)),
        "writers": len({r.writer for r in records}),
    }
