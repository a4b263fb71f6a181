"""Run counters from durable state: commit-record totals read incrementally, frames from the card's env,
snapshot versions that never go back."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

from dreamstream.datasets import Dataset, DatasetCard, EpisodeWriter, WriterConfig
from dreamstream.datasets.spec import spec_from_spaces
from dreamstream.datasets.synthetic import random_episode
from dreamstream.train.loop.run_counters import CommittedTotals, next_snapshot_version

SPEC = spec_from_spaces(spaces.Dict(vector=spaces.Box(-1, 1, (3,), np.float32)), spaces.Discrete(3))


def commit_episodes(url: str, lengths: list[int], env_config: dict | None = None) -> None:
    card = DatasetCard.create(SPEC, env_id="Test-v0", env_config=env_config or {})
    rng = np.random.default_rng(len(lengths))
    with EpisodeWriter(url, card, WriterConfig(chunk_steps=16)) as writer:
        for steps in lengths:
            writer.add_episode(random_episode(SPEC, steps, rng), policy="random")
            writer.commit()


def test_totals_count_every_committed_record_once(tmp_path):
    url = str(tmp_path / "data")
    commit_episodes(url, [30, 12])
    totals = CommittedTotals(url).refresh()
    records = Dataset(url).records()
    assert (totals.steps, totals.episodes, totals.shards) == (sum(r.steps for r in records), 2, len(records))
    assert totals.frames == totals.steps  # not an Atari env: one frame per step

    counted = records[0]  # a record already counted is not read again: overwriting it changes nothing
    (tmp_path / "data" / counted.record_path).write_text("not json")
    commit_episodes(url, [7])
    totals.refresh()
    assert (totals.steps, totals.episodes, totals.shards) == (sum(r.steps for r in records) + 7, 3, len(records) + 1)
    assert len(totals.writers) == 2


def test_a_malformed_record_is_not_counted(tmp_path, caplog):
    url = str(tmp_path / "data")
    commit_episodes(url, [20])
    (tmp_path / "data" / "index" / "intruder-000000.json").write_text('{"format": "dreamstream.commit"}')
    totals = CommittedTotals(url).refresh()
    assert (totals.steps, totals.episodes) == (20, 1)
    assert "intruder-000000" in caplog.text


def test_frames_follow_the_atari_frame_skip_of_the_card(tmp_path):
    url = str(tmp_path / "atari")
    commit_episodes(url, [10], env_config={"kind": "atari", "frame_skip": 4})
    assert CommittedTotals(url).refresh().frames == 40


@pytest.mark.parametrize(("step", "published", "version"), [
    (0, None, 0),  # a new run
    (200, 100, 200),  # the step is ahead of every published version
    (100, 100, 101),  # kill -9 after a snapshot at the checkpoint's step
    (100, 150, 151),  # kill -9 after snapshots newer than the checkpoint
])
def test_snapshot_versions_only_grow(step, published, version):
    assert next_snapshot_version(step, published) == version
