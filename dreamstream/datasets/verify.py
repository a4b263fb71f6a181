"""Dataset verification: every check `dreamstream validate` runs, one shard at a time.

`verify_shard` is the unit of work (the Dask pipeline maps it over shards); `find_orphans` compares the
shard listing with the commit records.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from dreamstream.datasets.errors import DatasetError
from dreamstream.datasets.reader import Dataset
from dreamstream.datasets.records import CommitRecord


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset, with its location."""

    kind: str  # "card" | "record" | "shard" | "orphan"
    where: str
    message: str

    def to_json(self) -> dict[str, str]:
        return asdict(self)

    def __str__(self) -> str:
        return f"[{self.kind}] {self.where}: {self.message}"


def verify_shard(dataset: Dataset, record: CommitRecord) -> tuple[int, list[Problem]]:
    """-> (steps verified, problems): checksum, tar structure, spec and commit-record agreement."""
    try:
        chunks = dataset.read_shard(record, verify=True)
    except DatasetError as exc:
        return 0, [Problem("shard", record.shard_path, _located(exc))]
    return sum(c.row.steps for c in chunks), []


def _located(exc: DatasetError) -> str:
    """The error without the dataset prefix (the report already names the dataset and shard)."""
    parts = [f"sample {exc.key}" if exc.key else "", f"field {exc.field}" if exc.field else ""]
    where = ", ".join(p for p in parts if p)
    return f"{where}: {exc.reason}" if where else exc.reason


def find_orphans(dataset: Dataset, record_names: list[str]) -> list[Problem]:
    """Shards with no commit record: invisible to readers; a writer died between shard and record,
    or a writer is committing right now (re-run to tell the two apart)."""
    committed = set(record_names)
    return [
        Problem("orphan", f"shards/{name}.tar", "shard has no commit record (not visible to readers)")
        for name in dataset.shard_names()
        if name not in committed
    ]
