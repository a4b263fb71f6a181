"""What a batch will hold, decided from commit records alone: chunk references, pieces and batch plans.

The samplers (tbtt.py, windows.py) plan every batch from the metadata in the commit records (episode,
chunk index, steps) without touching shard bytes; the executor (executor.py) then fetches the shards the
plans name and copies the planned rows. Planning from metadata is what makes batch counts computable
ahead (equal on every rank), epochs resumable (re-plan, skip) and runs reproducible on any store.

The samplers play chunks, not whole episodes: every committed chunk is used, of complete and of partial
episodes alike (dreamstream.datasets.episodes: follow mode must see growing episodes, and a damaged
episode's chunks are real rows). They plan shard by shard as shards arrive, so they keep no episode
index; they follow its rule for an episode's order: a chunk continues only into the chunk at `next_place`
(same episode, next chunk index), and where that chunk is not buffered the state resets.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from dreamstream.datasets.records import CommitRecord, SampleRow


def episode_hash(episode: str) -> int:
    """The `episode_id` batch field: a signed 64-bit hash of an episode id string (never 0)."""
    value = int.from_bytes(hashlib.blake2b(episode.encode(), digest_size=8).digest(), "little", signed=True)
    return value or 1


@dataclass(frozen=True, slots=True)
class ChunkRef:
    """One sample (a chunk of an episode) of one shard, as its commit record describes it."""

    shard: str  # commit record name
    key: str
    episode: str
    chunk: int
    start: int  # index of the chunk's first row within its episode
    steps: int
    is_first: bool
    is_last: bool
    episode_id: int
    record: CommitRecord = field(compare=False, repr=False, hash=False)

    @classmethod
    def of(cls, record: CommitRecord, row: SampleRow) -> ChunkRef:
        return cls(record.name, row.key, row.episode, row.chunk, row.start, row.steps, row.is_first, row.is_last,
                   episode_hash(row.episode), record)

    @property
    def id(self) -> tuple[str, str]:
        """Identity of the chunk's data: (shard, key)."""
        return self.shard, self.key

    @property
    def place(self) -> tuple[str, int]:
        """Position in its episode: (episode, chunk index)."""
        return self.episode, self.chunk

    @property
    def next_place(self) -> tuple[str, int] | None:
        """The place of the chunk this one continues into; None at the episode's end (`is_last`)."""
        return None if self.is_last else (self.episode, self.chunk + 1)


def chunk_refs(record: CommitRecord) -> list[ChunkRef]:
    return [ChunkRef.of(record, row) for row in record.samples]


@dataclass(slots=True)
class Piece:
    """Rows `offset : offset + length` of chunk `ref` go to batch row `row`, times `t : t + length`."""

    row: int
    t: int
    ref: ChunkRef
    offset: int
    length: int
    reset: bool  # start the model state from zero at this piece's first row


@dataclass
class BatchPlan:
    """One [T, rows] batch of one reader.

    `acquire` lists chunks that entered the sampler's buffer while planning it (fetch their shards now);
    `release` lists chunks no later batch will use (free them once this batch is assembled). Rows or
    times that no piece covers are padding (valid=False).
    """

    index: int
    pieces: list[Piece] = field(default_factory=list)
    acquire: list[ChunkRef] = field(default_factory=list)
    release: list[ChunkRef] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n
