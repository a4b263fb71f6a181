"""Dataset.episodes(): lazy episodes in dataset order, filters and samples planned from commit records."""

from __future__ import annotations

import numpy as np
import pytest

from dreamstream.datasets import Dataset, DatasetError, EpisodeWriter, WriterConfig
from dreamstream.datasets.reader import EpisodeChunks
from dreamstream.datasets.synthetic import random_episode

# (steps, terminal, policy, version): one writer each, so every episode sits in shards of its own writer
PLAN = [(40, True, "random", 0), (17, False, "random", 1), (33, True, "actor", 2), (5, False, "actor", 3),
        (60, True, "actor", 3)]


def write(url: str, card, spec, plan=PLAN, seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    episodes = []
    for steps, terminal, policy, version in plan:
        episode = random_episode(spec, steps, rng, terminal=terminal)
        with EpisodeWriter(url, card, WriterConfig(chunk_steps=16, shard_max_bytes=20_000)) as writer:
            writer.add_episode(episode, policy=policy, policy_version=version)
        episodes.append(episode)
    return episodes


def growing(url: str, card, spec, steps: int = 20) -> None:
    """An episode whose end is not committed yet (the writer closed mid-episode)."""
    episode = random_episode(spec, steps + 1, np.random.default_rng(9))
    with EpisodeWriter(url, card, WriterConfig(chunk_steps=16)) as writer:
        for t in range(steps):
            writer.add_step({k: v[t] for k, v in episode.items()}, policy="random", policy_version=7)


def by_length(episodes) -> dict[int, dict[str, np.ndarray]]:
    return {len(e["reward"]): e for e in episodes}


@pytest.fixture(params=["local", "memory", "s3"])
def url(request, tmp_path) -> str:
    if request.param == "local":
        return str(tmp_path / "ds")
    if request.param == "memory":
        return f"memory://episodes-{request.node.name}"
    return request.getfixturevalue("s3_url") + "/ds"


def test_episodes_read_back_with_their_facts_on_every_store(url, card, spec):
    originals = by_length(write(url, card, spec))
    growing(url, card, spec)
    dataset = Dataset(url)
    chosen = dataset.episodes()
    assert len(chosen) == len(PLAN) and chosen.ids == dataset.episodes().ids  # deterministic order
    facts = {steps: (terminal, policy, version) for steps, terminal, policy, version in PLAN}
    for episode in chosen:
        original = originals[episode.steps]
        for name in spec.fields:
            np.testing.assert_array_equal(episode[name], original[name], err_msg=name)
        assert episode.arrays["image"].dtype == np.uint8
        assert episode.ret == pytest.approx(float(original["reward"].sum()))
        terminal, policy, version = facts[episode.steps]
        assert (episode.terminated, episode.truncated) == (terminal, not terminal)
        assert (episode.policy, episode.policy_version) == (policy, version)
        assert episode.shards and all(s.startswith(episode.writer) for s in episode.shards)
    assert [e.steps for e in dataset.episodes(outcome="partial")] == [20]
    assert len(dataset.episodes(outcome="any")) == len(PLAN) + 1


def test_filters_choose_from_the_commit_records(tmp_path, card, spec):
    url = str(tmp_path / "ds")
    write(url, card, spec)
    growing(url, card, spec)
    dataset = Dataset(url)

    def lengths(**filters) -> list[int]:
        return sorted(e.steps for e in dataset.episodes(**filters).entries)

    assert lengths(policy="actor") == [5, 33, 60]
    assert lengths(versions=(1, 2)) == [17, 33]
    assert lengths(versions=(3, None)) == [5, 60]
    assert lengths(lengths=(17, 40)) == [17, 33, 40]
    assert lengths(outcome="terminated") == [33, 40, 60]
    assert lengths(outcome="truncated") == [5, 17]
    assert lengths(outcome="truncated", policy="actor") == [5]
    assert lengths(versions=(7, 7)) == [] and lengths(versions=(7, 7), outcome="partial") == [20]
    returns = {e.steps: e.ret for e in dataset.episodes().entries}
    low = sorted(returns.values())[2]
    assert lengths(returns=(low, None)) == sorted(s for s, r in returns.items() if r >= low)
    with pytest.raises(DatasetError, match="outcome 'done' is not one of"):
        dataset.episodes(outcome="done")


class CountingDataset(Dataset):
    """Counts the shards fetched (a real Dataset; only the count is added)."""

    fetched: list[str]

    def shard_bytes(self, record, verify=True):
        self.fetched.append(record.name)
        return super().shard_bytes(record, verify)


def test_shards_that_cannot_match_are_never_read(tmp_path, card, spec):
    url = str(tmp_path / "ds")
    originals = by_length(write(url, card, spec))
    dataset = CountingDataset(url)
    dataset.fetched = []
    chosen = dataset.episodes(policy="actor", outcome="terminated")
    assert sorted(e.steps for e in chosen.entries) == [33, 60]
    all_shards = {r.name for r in dataset.records()}
    unread = all_shards - set(chosen.shards)
    assert unread and not dataset.fetched  # planning read no shard
    for name in unread:  # the shards the plan skips can vanish: iteration never touches them
        (tmp_path / "ds" / "shards" / f"{name}.tar").unlink()
    for episode in chosen:
        np.testing.assert_array_equal(episode["action"], originals[episode.steps]["action"])
    # each needed shard fetched once, though consecutive chunks (and episodes) share it
    assert sorted(dataset.fetched) == sorted(chosen.shards) and len(set(dataset.fetched)) == len(dataset.fetched)
    with pytest.raises(DatasetError, match="shard is missing"):
        dataset.episode(dataset.episodes(policy="random").ids[0])


def test_consecutive_episodes_in_one_shard_read_it_once(tmp_path, card, spec):
    url = str(tmp_path / "ds")
    rng = np.random.default_rng(3)
    with EpisodeWriter(url, card, WriterConfig(chunk_steps=16)) as writer:
        for steps in (10, 30, 12, 25):
            writer.add_episode(random_episode(spec, steps, rng), policy="random")
    dataset = Dataset(url)
    records = dataset.records()
    assert len(records) == 1
    source = EpisodeChunks(dataset, records, fields={"action"})
    chosen = dataset.episodes()
    for entry in chosen.entries:
        parts = list(source.chunk_arrays(entry))
        assert [len(p["action"]) for p in parts] == [c.steps for c in entry.chunks]
        assert "image" not in parts[0]  # only the asked-for fields (plus reward and flags) are decoded
    assert source.reads == 1


def test_iter_chunks_holds_one_chunk_at_a_time(tmp_path, card, spec):
    url = str(tmp_path / "ds")
    original = random_episode(spec, 70, np.random.default_rng(4))
    with EpisodeWriter(url, card, WriterConfig(chunk_steps=16, shard_max_bytes=10_000)) as writer:
        writer.add_episode(original, policy="random")
    (episode,) = Dataset(url).episodes()
    parts = list(episode.iter_chunks())
    assert [len(p["reward"]) for p in parts] == [16, 16, 16, 16, 6] and len(episode.shards) > 1
    np.testing.assert_array_equal(np.concatenate([p["image"] for p in parts]), original["image"])
    assert episode._arrays is None  # iterating chunks kept no joined copy


def test_sample_is_seeded_and_planned(tmp_path, card, spec):
    url = str(tmp_path / "ds")
    write(url, card, spec, plan=[(8 + i, bool(i % 2), "random", i) for i in range(12)])
    chosen = Dataset(url).episodes()
    first, again, other = chosen.sample(4, seed=1), chosen.sample(4, seed=1), chosen.sample(4, seed=2)
    assert first.ids == again.ids and first.ids != other.ids and len(first) == 4
    assert set(first.ids) <= set(chosen.ids)
    assert first.ids == [i for i in chosen.ids if i in first.ids]  # dataset order kept
    assert set(first.shards) < set(chosen.shards)
    assert sorted(chosen.sample(12, seed=0).ids) == sorted(chosen.ids)
    assert [e.steps for e in first] == [e.steps for e in first.entries]
    with pytest.raises(DatasetError, match="cannot sample 13 episodes from a selection of 12"):
        chosen.sample(13)
