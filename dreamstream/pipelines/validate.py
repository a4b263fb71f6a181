"""`dreamstream validate ROOT --workers N | --scheduler URL`: the dataset checks as one Dask task per shard.

Each task reads its commit record and its shard on the worker and runs `verify_record` (record schema,
checksum, tar structure, spec, agreement with the record); a malformed or unreadable record is reported
for that shard alone. The client checks the card first and lists orphaned shards (shards without a
record): `dreamstream.datasets.verify.validate`, so the report is the serial command's, item for item.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dreamstream.datasets import Dataset
from dreamstream.datasets.verify import Problem, validate, verify_record
from dreamstream.pipelines.cluster import ClusterConfig, Runner, open_runner
from dreamstream.pipelines.shards import task_dataset, task_url


def verify_task(url: str, name: str, shards: bool = True) -> tuple[int, list[Problem]]:
    """One task: the commit record `name` and (with `shards`) its shard. -> (steps verified, problems)."""
    return verify_record(task_dataset(url), name, shards)


def validate_dataset(url: str, runner: Runner) -> dict[str, Any]:
    """-> {"root", "shards", "steps", "ok", "problems": [{"kind", "where", "message"}]}."""

    def verify_all(names: list[str], shards: bool) -> Iterator[tuple[int, list[Problem]]]:
        found = dict(runner.map(verify_task, [(task_url(url), name, shards) for name in names],
                                desc="verifying shards"))
        return (found[index] for index in sorted(found))  # shard order, whatever order tasks finished in

    report = validate(Dataset(url), verify_all)
    report["root"] = url
    return report


def run_validate(url: str, config: ClusterConfig) -> dict[str, Any]:
    with open_runner(config) as runner:
        return validate_dataset(url, runner)
