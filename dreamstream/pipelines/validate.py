"""`dreamstream validate ROOT --workers N | --scheduler URL`: the dataset checks as one Dask task per shard.

Each task reads its commit record and its shard on the worker and runs `verify_shard` (checksum, tar
structure, spec, agreement with the record); a malformed or unreadable record is reported for that
shard alone. The client reads the card first and lists orphaned shards (shards without a record).
The report has the same shape as the serial command's.
"""

from __future__ import annotations

from typing import Any

from dreamstream.datasets import Dataset, DatasetError
from dreamstream.datasets.records import INDEX
from dreamstream.datasets.verify import Problem, find_orphans, verify_shard
from dreamstream.pipelines.cluster import ClusterConfig, Runner, open_runner
from dreamstream.pipelines.shards import task_dataset, task_url


def verify_task(url: str, name: str) -> tuple[int, list[Problem]]:
    """One task: the commit record `name` and its shard. -> (steps verified, problems)."""
    dataset = task_dataset(url)
    try:
        record = dataset.records([name])[0]
    except DatasetError as exc:
        return 0, [Problem("record", f"{INDEX}/{name}.json", exc.reason)]
    return verify_shard(dataset, record)


def validate_dataset(url: str, runner: Runner) -> dict[str, Any]:
    """-> {"root", "shards", "steps", "ok", "problems": [{"kind", "where", "message"}]}."""
    dataset = Dataset(url)
    problems: list[Problem] = []
    names: list[str] = []
    try:
        _ = dataset.card
        names = dataset.record_names()
    except DatasetError as exc:
        problems.append(Problem("card" if not exc.shard else "record", exc.shard or "dataset.json", exc.reason))
    steps = shards = 0
    found: dict[int, list[Problem]] = {}
    for index, (verified, shard_problems) in runner.map(verify_task, [(task_url(url), name) for name in names],
                                                        desc="verifying shards"):
        steps += verified
        shards += 1
        found[index] = shard_problems
    for index in sorted(found):  # report in shard order, whatever order the tasks finished in
        problems.extend(found[index])
    if names or not problems:
        problems.extend(find_orphans(dataset, names))
    return {"root": url, "shards": shards, "steps": steps, "ok": not problems,
            "problems": [p.to_json() for p in problems]}


def run_validate(url: str, config: ClusterConfig) -> dict[str, Any]:
    with open_runner(config) as runner:
        return validate_dataset(url, runner)
