"""The episode index: every episode of a dataset as its commit records describe it (no shard is read).

This is the one definition of a complete episode (docs/format.md, "Episodes"). An episode is complete when
its committed chunks are exactly chunks 0..k, each once, each starting where the one before it ended, and
exactly one of them has `is_last`: chunk k. Every other episode is partial, for one of two reasons:

- growing: chunks 0..k are there, whole and in order, but none has `is_last` yet. A collector is still
  writing it, or stopped before its end (a crash, a budget); follow-mode training sees such episodes grow.
- damaged: a chunk is missing (a gap, or no chunk 0), appears twice (the same chunk index in two shards), does
  not start where its predecessor ended, or `is_last` is set on a chunk that is not the last one.

Statistics of returns and lengths (inspect, stats), corpus recipes and `dream`'s default episode count
complete episodes only; the streaming loader plays the chunks of every episode, partial ones included
(dreamstream.datasets.loader.plan).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from dreamstream.datasets.records import CommitRecord, SampleRow

COMPLETE, GROWING, DAMAGED = "complete", "growing", "damaged"


@dataclass(frozen=True)
class EpisodeChunk:
    """One committed chunk of an episode: the sample `key` of shard `shard` (its commit record name)."""

    shard: str
    key: str
    chunk: int
    start: int
    steps: int


@dataclass(frozen=True)
class Episode:
    """One episode of a dataset, from its commit-record rows.

    `chunks` are its committed chunks in chunk order (shard order for the same index twice); `steps` and
    `ret` add up those chunks. `policy`, `policy_version` and `writer` are those of its first committed
    chunk; `policies` lists every `<name>@<version>` that acted in it.
    """

    id: str
    chunks: tuple[EpisodeChunk, ...]
    steps: int
    ret: float
    state: str  # COMPLETE, GROWING or DAMAGED
    problem: str  # why a damaged episode is damaged ("" otherwise)
    terminal: bool  # its last chunk ended in a terminal state (never for a time-limit truncation)
    policy: str
    policy_version: int
    policies: frozenset[str]
    writer: str

    @property
    def complete(self) -> bool:
        return self.state == COMPLETE

    @property
    def terminated(self) -> bool:
        """A complete episode that ended in a terminal state."""
        return self.complete and self.terminal

    @property
    def truncated(self) -> bool:
        """A complete episode that ended by a time limit (`is_last` without `is_terminal`)."""
        return self.complete and not self.terminal

    @property
    def shards(self) -> list[str]:
        """The shards (commit record names) that hold its chunks, in chunk order, each once."""
        return list(dict.fromkeys(chunk.shard for chunk in self.chunks))


def policy_key(name: str, version: int) -> str:
    """`<name>@<version>`: how statistics and recipes name the policy version that acted."""
    return f"{name}@{version}"


def _state(rows: list[SampleRow]) -> tuple[str, str]:
    """(state, problem) of an episode whose rows are sorted by chunk index."""
    chunks = [row.chunk for row in rows]
    if len(set(chunks)) != len(chunks):
        twice = sorted(c for c, n in Counter(chunks).items() if n > 1)
        return DAMAGED, f"chunk(s) {twice} committed more than once"
    if chunks != list(range(len(chunks))):
        missing = sorted(set(range(chunks[-1] + 1)) - set(chunks))
        return DAMAGED, f"chunk(s) {missing[:5]} missing"
    start = 0
    for row in rows:
        if row.start != start:
            return DAMAGED, f"chunk {row.chunk} starts at row {row.start}, its predecessors end at {start}"
        start += row.steps
    lasts = [row.chunk for row in rows if row.is_last]
    if not lasts:
        return GROWING, ""
    if lasts != [chunks[-1]]:
        return DAMAGED, f"is_last on chunk(s) {lasts}, the last chunk is {chunks[-1]}"
    return COMPLETE, ""


class EpisodeIndex:
    """Every episode of some commit records, in commit order (the order their first chunks were committed)."""

    def __init__(self, records: Iterable[CommitRecord]):
        found: dict[str, list[tuple[SampleRow, str, str]]] = {}
        for record in records:
            for row in record.samples:
                found.setdefault(row.episode, []).append((row, record.name, record.writer))
        self.episodes: dict[str, Episode] = {}
        for episode, entries in found.items():
            entries.sort(key=lambda entry: entry[0].chunk)  # stable: shard order for a repeated chunk
            rows = [row for row, _, _ in entries]
            state, problem = _state(rows)
            first, _, writer = entries[0]
            self.episodes[episode] = Episode(
                id=episode,
                chunks=tuple(EpisodeChunk(shard, row.key, row.chunk, row.start, row.steps)
                             for row, shard, _ in entries),
                steps=sum(row.steps for row in rows),
                ret=sum(row.reward_sum for row in rows),
                state=state,
                problem=problem,
                terminal=rows[-1].is_terminal,
                policy=first.policy,
                policy_version=first.policy_version,
                policies=frozenset(policy_key(row.policy, row.policy_version) for row in rows),
                writer=writer,
            )

    def __len__(self) -> int:
        return len(self.episodes)

    def __iter__(self) -> Iterator[Episode]:
        return iter(self.episodes.values())

    def __contains__(self, episode: object) -> bool:
        return episode in self.episodes

    def __getitem__(self, episode: str) -> Episode:
        return self.episodes[episode]

    @property
    def ids(self) -> list[str]:
        return list(self.episodes)

    @property
    def complete(self) -> list[Episode]:
        return [e for e in self.episodes.values() if e.complete]

    @property
    def partial(self) -> list[Episode]:
        """Growing and damaged episodes."""
        return [e for e in self.episodes.values() if not e.complete]
