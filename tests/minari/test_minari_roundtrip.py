"""dreamstream -> Minari -> dreamstream for three env families, with real collectors and the real CLI."""

from __future__ import annotations

import minari
import numpy as np
import pytest
from minari_helpers import cli, collect

from dreamstream.collect.config import EnvConfig
from dreamstream.datasets import Dataset
from dreamstream.datasets.scores import ReferenceScores

FAMILIES = {
    # dict observations: a categorical 7x7x3 view and a direction; random walks that time out or reach the goal
    "minigrid": (EnvConfig(id="MiniGrid-Empty-5x5-v0", time_limit=60), 600),
    # 64x64x3 frames, discrete actions, episodes cut by a short time limit
    "atari": (EnvConfig(id="ALE/Pong-v5", time_limit=30, noop_max=0), 100),
    # a 3-vector observation and a Box action
    "pendulum": (EnvConfig(id="Pendulum-v1", time_limit=25), 100),
}
SCORES = ReferenceScores(random=-5.0, expert=1.5)
JPEG_TOLERANCE = 6.0
"""Mean absolute error per pixel allowed on image fields: Minari stores image spaces as JPEG."""


def exported(tmp_path, minari_root, family: str, *export_args: str) -> tuple[str, str, str]:
    """(original root, Minari id, imported root) for one family."""
    env_config, steps = FAMILIES[family]
    original, back = str(tmp_path / "original"), str(tmp_path / "back")
    collect(original, env_config, steps, preset=f"{family}_test", reference_scores=SCORES)
    dataset_id = f"dreamstream/{family}/random-v0"
    code, out, err = cli("export", "minari", original, "--dataset-id", dataset_id, "--out", str(minari_root),
                         *export_args)
    assert code == 0, err
    assert f"wrote Minari dataset {dataset_id}: " in out
    code, out, err = cli("import", "minari", dataset_id, "--out", back)
    assert code == 0, err
    return original, dataset_id, back


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_round_trip_keeps_rows_boundaries_outcomes_and_env(tmp_path, minari_root, family):
    original, dataset_id, back = exported(tmp_path, minari_root, family)
    source, copy = Dataset(original), Dataset(back)
    assert copy.card.spec == source.card.spec
    assert list(copy.card.spec.observations) == list(source.card.spec.observations)
    assert (copy.card.env_id, copy.card.preset, copy.card.env_config) == \
        (source.card.env_id, source.card.preset, source.card.env_config)
    assert copy.card.reference_scores == source.card.reference_scores == SCORES
    before, after = list(source.episodes()), list(copy.episodes())
    assert before and [e.steps for e in after] == [e.steps for e in before if e.steps >= 2]
    assert [(e.terminated, e.truncated) for e in after] == [(e.terminated, e.truncated) for e in before]
    if family == "minigrid":
        assert {e.terminated for e in before} == {True, False}, "the sample should hold both outcomes"
    for old, new in zip(before, after, strict=True):
        assert (new.policy, new.policy_version) == (old.policy, old.policy_version)
        for name, field in source.spec.fields.items():
            a, b = old.arrays[name], new.arrays[name]
            assert a.dtype == b.dtype and a.shape == b.shape, name
            if field.kind == "image":
                error = np.abs(a.astype(np.int16) - b.astype(np.int16)).mean()
                assert error < JPEG_TOLERANCE, f"{name}: mean error {error} per pixel"
            else:
                np.testing.assert_array_equal(a, b, err_msg=name)
        assert new.ret == pytest.approx(old.ret)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_the_minari_side_holds_n_plus_one_observations_and_the_env_spec(tmp_path, minari_root, family):
    original, dataset_id, _ = exported(tmp_path, minari_root, family)
    source = Dataset(original)
    ours = minari.load_dataset(dataset_id)
    complete = [e for e in source.episodes() if e.steps >= 2]
    assert ours.total_episodes == len(complete) and ours.total_steps == sum(e.steps - 1 for e in complete)
    assert ours.env_spec.id == source.card.env_id
    assert (ours.storage.metadata["ref_min_score"], ours.storage.metadata["ref_max_score"]) == (-5.0, 1.5)
    for old, episode in zip(complete, ours.iterate_episodes(), strict=True):
        steps = old.steps - 1
        assert len(episode.actions) == len(episode.rewards) == steps
        np.testing.assert_array_equal(episode.actions, old.arrays["action"][1:])
        np.testing.assert_array_equal(episode.rewards, old.arrays["reward"][1:])
        assert episode.terminations[-1] == old.terminated and episode.truncations[-1] == old.truncated
        assert not episode.terminations[:-1].any() and not episode.truncations[:-1].any()
        for name in source.spec.observations:
            assert len(episode.observations[name]) == steps + 1
    if family == "pendulum":
        env = ours.recover_environment()
        assert env.action_space.shape == (1,) and env.spec.id == "Pendulum-v1"
        env.close()


def test_atari_frames_are_exact_with_images_exact(tmp_path, minari_root):
    original, dataset_id, back = exported(tmp_path, minari_root, "atari", "--images", "exact")
    assert Dataset(back).spec == Dataset(original).spec
    space = minari.load_dataset(dataset_id).observation_space["image"]
    assert space.shape == (64, 64, 3) and (space.nvec == 256).all()
    before, after = list(Dataset(original).episodes()), list(Dataset(back).episodes())
    assert len(before) == len(after) > 0
    for old, new in zip(before, after, strict=True):
        np.testing.assert_array_equal(old["image"], new["image"])


def test_export_refuses_an_existing_id_and_a_malformed_one(tmp_path, minari_root):
    original, dataset_id, _ = exported(tmp_path, minari_root, "pendulum")
    code, _, err = cli("export", "minari", original, "--dataset-id", dataset_id, "--out", str(minari_root))
    assert code == 2 and "already exists" in err
    code, _, err = cli("export", "minari", original, "--dataset-id", "not an id!", "--out", str(minari_root))
    assert code == 2 and "is not a Minari id" in err
