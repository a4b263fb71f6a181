"""`ROOT/stats.json`: a dataset's statistics stored beside its card (`dreamstream stats ROOT --write`), for
normalisers and dashboards that should not recompute them.

A versioned, bounded document: at most MAX_STATS_BYTES, at most MAX_GROUPS per-policy and per-writer
groups (the largest by steps; the count left out is recorded), and checked on read like every file of a
dataset (the counts and distributions a reader uses are typed and ranged). `shards` and `steps` say which
commit records it was computed from, so a reader can tell that the dataset has grown since.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import fsspec

from dreamstream.datasets.errors import DatasetError
from dreamstream.datasets.schema import Obj, SchemaError, load_json, read_bounded
from dreamstream.datasets.storage import replace_bytes
from dreamstream.redact import redact_tree

STATS_NAME = "stats.json"
STATS_FORMAT = "dreamstream.stats"
STATS_VERSION = 1
MAX_STATS_BYTES = 8 * 2**20
MAX_GROUPS = 256
MAX_COUNT = 2**62
GROUPS = ("by_policy", "by_writer")
DISTRIBUTIONS = ("return", "length")
_DESCRIBE = ("mean", "std", "min", "max", "p5", "p25", "p50", "p75", "p95")


@dataclass(frozen=True)
class StoredStats:
    """A stats.json document: the statistics (`summary`, as `dreamstream stats --json` prints them) and
    what they were computed from."""

    summary: dict[str, Any]
    created: str
    shards: int
    steps: int


def _bounded_groups(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary with at most MAX_GROUPS entries per group (the largest by steps)."""
    out = dict(summary)
    omitted = {}
    for name in GROUPS:
        groups = summary.get(name) or {}
        if len(groups) > MAX_GROUPS:
            kept = sorted(groups, key=lambda key: -groups[key]["steps"])[:MAX_GROUPS]
            out[name] = {key: groups[key] for key in sorted(kept)}
            omitted[name] = len(groups) - MAX_GROUPS
    if omitted:
        out["omitted_groups"] = omitted
    return out


def stats_document(summary: dict[str, Any]) -> bytes:
    """The stats.json bytes of a `compute_stats` summary (credentials redacted, groups bounded)."""
    document = {"format": STATS_FORMAT, "version": STATS_VERSION,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "shards": summary["shards"], "steps": summary["steps"],
                "summary": redact_tree(_bounded_groups(summary))}
    data = json.dumps(document, indent=1, allow_nan=False).encode()
    if len(data) > MAX_STATS_BYTES:
        raise DatasetError(f"{STATS_NAME} would be {len(data)} bytes, more than the {MAX_STATS_BYTES} readers accept")
    return data


def _count(obj: Obj, name: str) -> int:
    return obj.integer(name, 0, MAX_COUNT)


def _distribution(obj: Obj, name: str) -> None:
    """A `describe` result (count and finite moments and percentiles), or null when there was nothing."""
    if obj.get(name, None) is None:
        return
    dist = obj.obj(name)
    dist.integer("count", 1, MAX_COUNT)
    for key in _DESCRIBE:
        dist.number(key)


def _check_summary(obj: Obj) -> None:
    for name in ("shards", "samples", "steps", "bytes"):
        _count(obj, name)
    episodes = obj.obj("episodes")
    for name in ("total", "complete", "incomplete", "terminated", "truncated"):
        _count(episodes, name)
    for name in DISTRIBUTIONS:
        _distribution(obj, name)
    for name in GROUPS:
        groups = obj.obj(name)
        if len(groups.value) > MAX_GROUPS:
            raise SchemaError(groups.key, f"{len(groups.value)} groups, more than {MAX_GROUPS}")
        for key in groups.value:
            group = groups.obj(key)
            for count in ("episodes", "complete", "steps", "terminated", "truncated"):
                _count(group, count)
            for dist in DISTRIBUTIONS:
                _distribution(group, dist)
    for name in ("rewards", "actions", "observations", "lineage"):
        if obj.get(name, None) is not None:
            obj.obj(name)


def parse_stats(raw: bytes, where: str = "") -> StoredStats:
    """A stats.json document from its bytes, checked; DatasetError naming the root and the key."""
    try:
        obj = Obj(load_json(raw, MAX_STATS_BYTES))
        obj.equal("format", STATS_FORMAT)
        obj.equal("version", STATS_VERSION)
        summary = obj.obj("summary")
        _check_summary(summary)
        stats = StoredStats(summary=summary.value, created=obj.string("created", 64),
                            shards=_count(obj, "shards"), steps=_count(obj, "steps"))
    except SchemaError as exc:
        raise DatasetError(f"{STATS_NAME} is malformed: {exc}", root=where) from None
    if (stats.shards, stats.steps) != (stats.summary["shards"], stats.summary["steps"]):
        raise DatasetError(f"{STATS_NAME} is malformed: its shards/steps differ from its summary's", root=where)
    return stats


def read_stats(fs: fsspec.AbstractFileSystem, root: str, url: str = "") -> StoredStats | None:
    """The dataset's stats.json, checked; None if it has none."""
    try:
        raw = read_bounded(fs, f"{root}/{STATS_NAME}", MAX_STATS_BYTES)
    except FileNotFoundError:
        return None
    except SchemaError as exc:
        raise DatasetError(f"{STATS_NAME} is malformed: {exc}", root=url or root) from None
    return parse_stats(raw, url or root)


def write_stats(fs: fsspec.AbstractFileSystem, root: str, summary: dict[str, Any], url: str = "") -> StoredStats:
    """Store the statistics as ROOT/stats.json, replacing an older one whole (readers see the old or the
    new document); -> what a reader will read back."""
    data = stats_document(summary)
    replace_bytes(fs, f"{root}/{STATS_NAME}", data)
    return parse_stats(data, url or root)
