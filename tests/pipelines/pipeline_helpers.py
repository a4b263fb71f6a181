"""Test helpers of the pipeline tests: episodes whose every number the test knows, written with EpisodeWriter."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from dreamstream.datasets import DatasetCard, EpisodeSpec, EpisodeWriter, WriterConfig
from dreamstream.datasets.synthetic import random_episode

N_ACTIONS = 5


@dataclass
class Episode:
    arrays: dict[str, np.ndarray]
    policy: str
    version: int
    writer: str

    @property
    def steps(self) -> int:
        return len(self.arrays["reward"])

    @property
    def ret(self) -> float:
        return float(self.arrays["reward"].sum(dtype=np.float64))

    @property
    def terminal(self) -> bool:
        return bool(self.arrays["is_terminal"][-1])

    @property
    def digest(self) -> str:
        return content_digest(self.arrays)


def content_digest(arrays: dict[str, np.ndarray]) -> str:
    """An independent content hash of an episode: every field's bytes, fields sorted by name."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        h.update(name.encode())
        h.update(np.ascontiguousarray(arrays[name]).tobytes())
    return h.hexdigest()


def make_episode(spec: EpisodeSpec, rng: np.random.Generator, steps: int, ret: float, terminal: bool = True,
                 policy: str = "random", version: int = 0, writer: str = "w") -> Episode:
    """A random episode whose rewards sum exactly to `ret` (all of it on the last row)."""
    arrays = random_episode(spec, steps, rng, terminal=terminal)
    reward = np.zeros(steps, np.float32)
    reward[-1] = ret
    if steps > 2:
        reward[1] = 1.0  # two more reward values, cancelling out, so the histogram has a few values
        reward[2] = -1.0
    arrays["reward"] = reward
    return Episode(arrays, policy, version, writer)


def write_dataset(url: str, card: DatasetCard, episodes: list[Episode], chunk_steps: int = 16,
                  shard_bytes: int = 20_000, compress_level: int | None = 3) -> None:
    """Write the episodes, one EpisodeWriter per distinct `writer` (so per-writer stats have groups)."""
    config = WriterConfig(chunk_steps=chunk_steps, shard_max_bytes=shard_bytes, compress_level=compress_level)
    for writer_name in sorted({e.writer for e in episodes}):
        with EpisodeWriter(url, card, config, writer_id=writer_name) as writer:
            for e in episodes:
                if e.writer == writer_name:
                    writer.add_episode(e.arrays, policy=e.policy, policy_version=e.version)
