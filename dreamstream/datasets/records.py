"""Commit records `ROOT/index/<writer>-<seq>.json`: a shard becomes visible when its record exists.

A record lists the shard's bytes and sha256 and one row per sample, so that statistics, filters and
loaders can plan their work from small JSON files without opening a shard. Records come from stores that
many machines write, so `parse_record` checks every value (docs/format.md, "Schemas"): the loader plans
batches from these numbers, and a record claiming 10^12 steps or zero steps must not reach the planner.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from dreamstream.datasets.card import FORMAT_VERSION
from dreamstream.datasets.errors import DatasetError
from dreamstream.datasets.schema import Obj, SchemaError, load_json

RECORD_FORMAT = "dreamstream.commit"
RECORD_VERSION = 1
SHARDS, INDEX = "shards", "index"

MAX_RECORD_BYTES = 16 * 2**20
"""Largest commit record file read (a record of a 64 MiB shard of 1000-step chunks is a few KB)."""
MAX_META_BYTES = 64 * 2**10
"""Largest meta.json member read."""
MAX_SAMPLE_STEPS = 2**20
"""Most rows in one sample (the writer's `chunk_steps` is at most this)."""
MAX_SAMPLES = 2**15
"""Most samples in one shard (the writer commits a shard when it reaches this)."""
MAX_RECORD_STEPS = 2**23
"""Most rows in one shard (the writer commits a shard when it reaches this; a 64 MiB shard holds at most
about 4.5M rows, as each row stores 15+ bytes raw). Bounds the planning work one record can cause before
its shard is fetched and its size checked: about 2 s for a crafted record at the bound."""
MAX_SHARD_BYTES = 2**40
MAX_COUNT = 2**62  # episode positions, policy versions
MAX_TEXT = 256

NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,127}")
"""Shard names, writer ids and episode ids: safe as file names and WebDataset keys (no dots, no slashes)."""
SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class SampleRow:
    """One sample (= one chunk of one episode) as the commit record and the sample's meta.json state it."""

    key: str  # "<episode>-<chunk:04d>"
    episode: str
    chunk: int  # index of this chunk within its episode
    start: int  # index of this chunk's first row within its episode
    steps: int
    reward_sum: float  # sum of `reward` over this chunk's rows (episode return = sum over its chunks)
    is_first: bool  # the chunk starts its episode
    is_last: bool  # the chunk ends its episode (truncated or terminal)
    is_terminal: bool  # the episode ended in a terminal state (never set for a time-limit truncation)
    policy: str
    policy_version: int
    created: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any, key: str = "") -> SampleRow:
        """A row from JSON, every value checked; raises SchemaError naming the key."""
        obj = Obj(data, key)
        episode = obj.string("episode", 128, NAME)
        chunk = obj.integer("chunk", 0, MAX_COUNT)
        row = cls(
            key=obj.string("key", 140),
            episode=episode,
            chunk=chunk,
            start=obj.integer("start", 0, MAX_COUNT),
            steps=obj.integer("steps", 1, MAX_SAMPLE_STEPS),
            reward_sum=obj.number("reward_sum"),
            is_first=obj.boolean("is_first"),
            is_last=obj.boolean("is_last"),
            is_terminal=obj.boolean("is_terminal"),
            policy=obj.string("policy", MAX_TEXT),
            policy_version=obj.integer("policy_version", 0, MAX_COUNT),
            created=obj.number("created"),
        )
        if row.key != f"{episode}-{chunk:04d}":
            raise SchemaError(obj.path("key"), f"{row.key!r} is not '<episode>-<chunk:04d>' ({episode}-{chunk:04d})")
        if row.is_first != (chunk == 0) or (row.start == 0) != (chunk == 0):
            raise SchemaError(obj.path("is_first"), "is_first and start == 0 hold for chunk 0 only")
        if row.is_terminal and not row.is_last:
            raise SchemaError(obj.path("is_terminal"), "is_terminal without is_last")
        return row


@dataclass(frozen=True)
class CommitRecord:
    """The commit record of one shard."""

    name: str  # "<writer>-<seq>", shared by the shard and its record
    bytes: int
    sha256: str
    writer: str
    created: float
    samples: tuple[SampleRow, ...] = field(default_factory=tuple)

    @property
    def shard_path(self) -> str:
        """Path of the shard relative to ROOT."""
        return f"{SHARDS}/{self.name}.tar"

    @property
    def record_path(self) -> str:
        return f"{INDEX}/{self.name}.json"

    @property
    def steps(self) -> int:
        return sum(row.steps for row in self.samples)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": RECORD_FORMAT,
            "version": 1,
            "shard": self.shard_path,
            "name": self.name,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "writer": self.writer,
            "created": self.created,
            "samples": [row.to_json() for row in self.samples],
        }

    def dumps(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: Any) -> CommitRecord:
        """A record from JSON, every value checked; raises SchemaError naming the key.

        Beyond types and ranges: `shard` is exactly `shards/<name>.tar` (a record cannot point outside
        ROOT), sample keys are unique, and the shard's steps fit its bytes (every row stores at least one
        raw byte, its `is_first` flag) and MAX_RECORD_STEPS.
        """
        obj = Obj(data)
        obj.equal("format", RECORD_FORMAT)
        obj.equal("version", RECORD_VERSION)
        name = obj.string("name", 128, NAME)
        obj.equal("shard", f"{SHARDS}/{name}.tar")
        record = cls(
            name=name,
            bytes=obj.integer("bytes", 1, MAX_SHARD_BYTES),
            sha256=obj.string("sha256", 64, SHA256),
            writer=obj.string("writer", 128, NAME),
            created=obj.number("created"),
            samples=tuple(SampleRow.from_json(row, key) for key, row in obj.items("samples", 1, MAX_SAMPLES)),
        )
        keys = {row.key for row in record.samples}
        if len(keys) != len(record.samples):
            raise SchemaError("samples", "a sample key appears twice")
        steps = record.steps
        if steps > min(record.bytes, MAX_RECORD_STEPS):
            raise SchemaError("samples", f"{steps} steps in total, more than the shard's {record.bytes} bytes "
                                         f"or {MAX_RECORD_STEPS} allow")
        return record


def parse_record(raw: bytes, name: str, root: str = "") -> CommitRecord:
    """The commit record `index/<name>.json` from its bytes; DatasetError naming the file and key.

    The record's own `name` must be its file name: a record cannot describe another writer's shard.
    """
    where = f"{INDEX}/{name}.json"
    try:
        record = CommitRecord.from_json(load_json(raw, MAX_RECORD_BYTES))
        if record.name != name:
            raise SchemaError("name", f"{record.name!r} differs from the file name {name!r}")
    except SchemaError as exc:
        raise DatasetError(f"commit record is malformed: {exc}", root=root, shard=where) from None
    return record


def parse_meta(raw: Any, shard: str, key: str) -> dict[str, Any]:
    """A sample's meta.json (bytes, or the value the codec decoded) checked as a row; DatasetError naming
    the shard, sample and key. Returns the JSON object (its row values typed as the commit record's)."""
    try:
        data = load_json(raw, MAX_META_BYTES) if isinstance(raw, bytes) else raw
        SampleRow.from_json(data)
        Obj(data).equal("format_version", FORMAT_VERSION)
    except SchemaError as exc:
        raise DatasetError(f"meta.json is malformed: {exc}", shard=shard, key=key, field="meta") from None
    return data
