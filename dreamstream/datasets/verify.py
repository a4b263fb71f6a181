"""Dataset verification: every check `dreamstream validate` runs, the same serially or on Dask.

`verify_record` is the unit of work (one commit record and its shard; the Dask pipeline maps it over
record names); `validate` runs the card check, every unit and the orphan check, and lists every damaged
item, not only the first. A store that cannot be reached raises StoreError: that is one error, not a
list of damage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from dreamstream.datasets.card import CARD_NAME
from dreamstream.datasets.errors import DatasetError, StoreError
from dreamstream.datasets.reader import Dataset
from dreamstream.datasets.records import INDEX, CommitRecord

# (record names, whether the card is good enough to check shards) -> (steps verified, problems) per name,
# in the order of the names.
VerifyAll = Callable[[list[str], bool], Iterable[tuple[int, list["Problem"]]]]


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


def verify_record(dataset: Dataset, name: str, shards: bool = True) -> tuple[int, list[Problem]]:
    """One commit record, and with `shards` (a card to check them against) its shard."""
    records, errors = dataset.read_records([name])
    if errors:
        return 0, [Problem("record", f"{INDEX}/{name}.json", _located(errors[0]))]
    return verify_shard(dataset, records[0]) if shards else (0, [])


def serially(dataset: Dataset) -> VerifyAll:
    """Verify records one after the other in this process (quickest for small datasets)."""
    return lambda names, shards: (verify_record(dataset, name, shards) for name in names)


def validate(dataset: Dataset, verify_all: VerifyAll) -> dict[str, Any]:
    """-> {"root", "shards", "steps", "ok", "problems": [{"kind", "where", "message"}]}, every problem listed."""
    problems: list[Problem] = []
    try:
        _ = dataset.card
        card_ok = True
    except StoreError:
        raise
    except DatasetError as exc:
        problems.append(Problem("card", CARD_NAME, exc.reason))
        card_ok = False
    names = dataset.record_names()
    steps = shards = 0
    for verified, found in verify_all(names, card_ok):
        steps += verified
        shards += 1
        problems.extend(found)
    problems.extend(find_orphans(dataset, names))
    return {"root": dataset.url, "shards": shards, "steps": steps, "ok": not problems,
            "problems": [p.to_json() for p in problems]}


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
