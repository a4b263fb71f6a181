"""Commit records `ROOT/index/<writer>-<seq>.json`: a shard becomes visible when its record exists.

A record lists the shard's bytes and sha256 and one row per sample, so that statistics, filters and
loaders can plan their work from small JSON files without opening a shard.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

RECORD_FORMAT = "dreamstream.commit"
SHARDS, INDEX = "shards", "index"


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
    def from_json(cls, data: dict[str, Any]) -> SampleRow:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


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
    def from_json(cls, data: dict[str, Any]) -> CommitRecord:
        if data.get("format") != RECORD_FORMAT:
            raise ValueError(f"format is {data.get('format')!r}, expected {RECORD_FORMAT!r}")
        return cls(
            name=data["name"],
            bytes=int(data["bytes"]),
            sha256=data["sha256"],
            writer=data["writer"],
            created=float(data["created"]),
            samples=tuple(SampleRow.from_json(row) for row in data["samples"]),
        )
