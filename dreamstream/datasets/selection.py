"""Choosing episodes of a dataset and reading the chosen ones lazily (docs/episodes.md).

A selection is planned from the episode index alone (dreamstream.datasets.episodes: commit records, no
shard opened): filters on policy, policy version, return, length and outcome, and `sample(n, seed)`, all
pick index entries, so a shard that holds no chosen episode is never read. Reading is left to a
`ChunkSource` (dreamstream.datasets.reader), which decodes one chunk at a time when an episode's arrays
are asked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

import numpy as np

from dreamstream.datasets.episodes import COMPLETE, Episode
from dreamstream.datasets.errors import DatasetError

OUTCOMES = ("complete", "terminated", "truncated", "partial", "any")
"""complete: every complete episode (the default); terminated / truncated: complete episodes that ended
in a terminal state / by a time limit; partial: growing and damaged ones; any: all of them."""

Bounds = tuple[float | None, float | None]
"""(low, high), both inclusive; None leaves that side open."""


class ChunkSource(Protocol):
    """Decoded chunks of an index entry, in chunk order: {field: [steps, ...] array} each."""

    def chunk_arrays(self, episode: Episode) -> Iterator[dict[str, np.ndarray]]: ...


def _within(value: float, bounds: Bounds | None) -> bool:
    if bounds is None:
        return True
    low, high = bounds
    return (low is None or value >= low) and (high is None or value <= high)


def _has_outcome(episode: Episode, outcome: str) -> bool:
    if outcome == "any":
        return True
    if outcome == "partial":
        return episode.state != COMPLETE
    if outcome == "terminated":
        return episode.terminated
    if outcome == "truncated":
        return episode.truncated
    return episode.complete


def select(episodes: Iterable[Episode], *, policy: str | None = None, versions: Bounds | None = None,
           returns: Bounds | None = None, lengths: Bounds | None = None,
           outcome: str = "complete") -> list[Episode]:
    """The entries that pass every filter, in the order given.

    `policy` and `versions` test the policy (name) and version of the episode's first chunk (as the
    index entry records them); `returns` and `lengths` the committed chunks' return and steps.
    """
    if outcome not in OUTCOMES:
        raise DatasetError(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
    return [e for e in episodes
            if _has_outcome(e, outcome) and (policy is None or e.policy == policy)
            and _within(e.policy_version, versions) and _within(e.ret, returns) and _within(e.steps, lengths)]


class EpisodeData:
    """One chosen episode: its index entry's facts at once, its arrays when asked for.

    `arrays` decodes every chunk and joins them (memory: one episode), once; `iter_chunks()` yields one
    chunk's arrays at a time and keeps none (memory: one chunk, for very long episodes).
    """

    def __init__(self, entry: Episode, source: ChunkSource):
        self.entry = entry
        self._source = source
        self._arrays: dict[str, np.ndarray] | None = None

    @property
    def id(self) -> str:
        return self.entry.id

    @property
    def steps(self) -> int:
        """Rows committed (the length of a complete episode, its reset row included)."""
        return self.entry.steps

    @property
    def ret(self) -> float:
        """The sum of its rewards."""
        return self.entry.ret

    @property
    def complete(self) -> bool:
        return self.entry.complete

    @property
    def terminated(self) -> bool:
        return self.entry.terminated

    @property
    def truncated(self) -> bool:
        return self.entry.truncated

    @property
    def policy(self) -> str:
        return self.entry.policy

    @property
    def policy_version(self) -> int:
        return self.entry.policy_version

    @property
    def writer(self) -> str:
        return self.entry.writer

    @property
    def shards(self) -> list[str]:
        """Commit record names of the shards that hold it, in chunk order."""
        return self.entry.shards

    def iter_chunks(self) -> Iterator[dict[str, np.ndarray]]:
        """Its committed chunks in order, each {field: [chunk steps, ...] array}, decoded one at a time."""
        return self._source.chunk_arrays(self.entry)

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        """{field: [steps, ...] array}: its chunks joined in chunk order (decoded on first use)."""
        if self._arrays is None:
            parts = list(self.iter_chunks())
            self._arrays = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
        return self._arrays

    def __getitem__(self, field: str) -> np.ndarray:
        return self.arrays[field]

    def __repr__(self) -> str:
        outcome = "terminated" if self.terminated else "truncated" if self.truncated else self.entry.state
        return f"EpisodeData({self.id!r}, steps={self.steps}, ret={self.ret:g}, {outcome}, " \
               f"policy={self.policy}@{self.policy_version})"


class Episodes:
    """A planned selection of episodes, in dataset order (the index's commit order); iterating yields
    EpisodeData whose arrays are read only when asked for."""

    def __init__(self, entries: Sequence[Episode], source: ChunkSource):
        self.entries = list(entries)
        self._source = source

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[EpisodeData]:
        return (EpisodeData(entry, self._source) for entry in self.entries)

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self.entries]

    @property
    def steps(self) -> int:
        return sum(e.steps for e in self.entries)

    @property
    def shards(self) -> list[str]:
        """The shards (commit record names) reading every chosen episode opens, each once, in reading order."""
        return list(dict.fromkeys(shard for e in self.entries for shard in e.shards))

    def sample(self, n: int, seed: int | None = None) -> Episodes:
        """`n` of these episodes drawn without replacement (numpy's default_rng(seed)); kept in dataset
        order, so that episodes sharing a shard stay next to each other and the shard is read once."""
        if not 0 <= n <= len(self.entries):
            raise DatasetError(f"cannot sample {n} episodes from a selection of {len(self.entries)}")
        chosen = np.random.default_rng(seed).choice(len(self.entries), size=n, replace=False)
        return Episodes([self.entries[i] for i in sorted(chosen.tolist())], self._source)
