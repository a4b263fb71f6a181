"""Helpers for the loader tests: small corpora written with the real writer, and what they hold."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch

from dreamstream.datasets import Dataset, DatasetCard, EpisodeSpec, EpisodeWriter, WriterConfig
from dreamstream.datasets.loader import episode_hash
from dreamstream.datasets.synthetic import random_episode


@dataclass
class Corpus:
    url: str
    episodes: dict[int, dict[str, np.ndarray]]  # episode_id (hash) -> joined arrays
    chunk_starts: set[tuple[int, int]]  # (episode_id, first step) of every chunk

    @property
    def steps(self) -> int:
        return sum(len(e["reward"]) for e in self.episodes.values())

    def all_steps(self) -> Counter:
        return Counter((eid, t) for eid, e in self.episodes.items() for t in range(len(e["reward"])))


def write_corpus(url: str, spec: EpisodeSpec, lengths: list[int], chunk_steps: int = 16,
                 shard_max_bytes: int = 6_000, seed: int = 0, slots: int = 3) -> Corpus:
    """Episodes written step by step from `slots` interleaved environments, so chunks of one episode
    land in several shards, as a collector writes them."""
    rng = np.random.default_rng(seed)
    card = DatasetCard.create(spec, env_id="Test-v0")
    episodes = [random_episode(spec, n, rng, terminal=bool(i % 2)) for i, n in enumerate(lengths)]
    config = WriterConfig(chunk_steps=chunk_steps, shard_max_bytes=shard_max_bytes, shard_max_age_s=1e9)
    with EpisodeWriter(url, card, config) as writer:
        queues = [list(range(i, len(episodes), slots)) for i in range(slots)]
        cursors = [[q.pop(0), 0] if q else None for q in queues]
        while any(c is not None for c in cursors):
            for slot, cursor in enumerate(cursors):
                if cursor is None:
                    continue
                index, t = cursor
                episode = episodes[index]
                writer.add_step({k: v[t] for k, v in episode.items()}, slot=slot, policy="random")
                cursor[1] += 1
                if cursor[1] == len(episode["reward"]):
                    cursors[slot] = [queues[slot].pop(0), 0] if queues[slot] else None
    joined = {}
    dataset = Dataset(url)
    starts = {(episode_hash(row.episode), row.start) for record in dataset.records() for row in record.samples}
    by_episode: dict[str, list] = {}
    for chunk in dataset.chunks():
        by_episode.setdefault(chunk.row.episode, []).append(chunk)
    for episode, chunks in by_episode.items():
        chunks.sort(key=lambda c: c.row.chunk)
        joined[episode_hash(episode)] = {k: np.concatenate([c.arrays[k] for c in chunks]) for k in spec.fields}
    assert len(joined) == len(lengths)
    return Corpus(url, joined, starts)


def positions(batch: dict[str, torch.Tensor]) -> list[tuple[int, int]]:
    """(episode_id, episode_step) of every valid cell of a batch."""
    valid = batch["valid"].numpy()
    return list(zip(batch["episode_id"].numpy()[valid].tolist(), batch["episode_step"].numpy()[valid].tolist(),
                    strict=True))


def check_values(batch: dict[str, torch.Tensor], corpus: Corpus) -> None:
    """Every valid cell holds the corpus' row for its (episode, step), in every field."""
    valid = batch["valid"].numpy()
    ids, steps = batch["episode_id"].numpy(), batch["episode_step"].numpy()
    for t, b in zip(*np.nonzero(valid), strict=True):
        episode = corpus.episodes[int(ids[t, b])]
        for name, array in episode.items():
            np.testing.assert_array_equal(batch[name][t, b].numpy(), array[steps[t, b]], err_msg=name)
