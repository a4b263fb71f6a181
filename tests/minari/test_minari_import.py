"""Minari datasets made with minari's own API (real gymnasium episodes, no downloads) imported and trained on."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces
from minari.data_collector import EpisodeBuffer
from minari_helpers import cli, gym_episodes, minari_dataset

from dreamstream.datasets import Dataset


def test_a_minari_dataset_imports_with_its_rows_outcomes_and_env_spec(tmp_path, minari_root):
    buffers = gym_episodes("CartPole-v1", episodes=4, max_episode_steps=15)
    minari_dataset("cartpole/random-v0", buffers, env="CartPole-v1", ref_min_score=9.5, ref_max_score=500.0)
    root = str(tmp_path / "cartpole")
    code, out, err = cli("import", "minari", "cartpole/random-v0", "--out", root)
    assert code == 0, err
    steps = sum(len(b.rewards) for b in buffers)
    assert out.strip() == f"imported Minari dataset cartpole/random-v0: 4 episodes, {steps + 4} rows, into {root}"
    dataset = Dataset(root)
    card = dataset.card
    assert card.env_id == "CartPole-v1"
    assert card.env_config == {"id": "CartPole-v1", "make_kwargs": {}, "time_limit": 500}
    assert list(card.spec.observations) == ["vector"] and card.spec.observations["vector"].shape == (4,)
    assert card.spec.action.kind == "discrete" and card.spec.action.n == 2
    assert card.reference_scores.to_json() == {"random": 9.5, "expert": 500.0}
    assert card.lineage["kind"] == "import" and card.lineage["sources"][0]["name"] == "cartpole/random-v0"
    episodes = list(dataset.episodes())
    assert len(episodes) == 4
    for buffer, episode in zip(buffers, episodes, strict=True):
        rows = episode.arrays
        np.testing.assert_array_equal(rows["vector"], np.asarray(buffer.observations, np.float32))
        np.testing.assert_array_equal(rows["action"], np.concatenate([[0], buffer.actions]))
        np.testing.assert_array_equal(rows["reward"], np.concatenate([[0], buffer.rewards]).astype(np.float32))
        assert rows["is_first"][0] and not rows["is_first"][1:].any()
        assert rows["is_last"][-1] and not rows["is_last"][:-1].any()
        assert episode.terminated == bool(buffer.terminations[-1])
        assert episode.truncated == (bool(buffer.truncations[-1]) and not buffer.terminations[-1])
    assert {e.truncated for e in episodes} == {True, False}, "15-step limit: some time out, some fall"


def test_an_imported_minari_dataset_trains_offline(tmp_path, minari_root, mlflow_uri, monkeypatch, dreamstream):
    minari_dataset("cartpole/train-v0", gym_episodes("CartPole-v1", episodes=12), env="CartPole-v1")
    root, run = str(tmp_path / "cartpole"), str(tmp_path / "run")
    dreamstream("import", "minari", "cartpole/train-v0", "--out", root)
    monkeypatch.setenv("DREAMSTREAM_SMOKE", "1")
    out = dreamstream("train", "--offline", "--data", root, "--run", run, "--no-progress")
    assert "trained to gradient step 6 on" in out.stdout


def test_dict_observations_keep_their_keys_and_a_text_field_can_be_dropped(tmp_path, minari_root):
    observation = spaces.Dict({"position": spaces.Box(-1, 1, (2,), np.float32), "cell": spaces.Discrete(5),
                               "mission": spaces.Text(32)})
    rng = np.random.default_rng(0)
    buffer = EpisodeBuffer(
        observations={"position": rng.uniform(-1, 1, (4, 2)).astype(np.float32), "cell": np.array([0, 4, 2, 3]),
                       "mission": ["go"] * 4},
        actions=np.array([[0.5], [-0.5], [0.25]], np.float32), rewards=[0.0, 1.0, 2.0],
        terminations=[False, False, True], truncations=[False, False, False])
    minari_dataset("grid/text-v0", [buffer], observation_space=observation,
                   action_space=spaces.Box(-1, 1, (1,), np.float32))
    root = str(tmp_path / "grid")
    code, _, err = cli("import", "minari", "grid/text-v0", "--out", root)
    assert code == 2
    assert "field 'mission': unsupported observation space Text(" in err and "--drop-field" in err
    code, _, err = cli("import", "minari", "grid/text-v0", "--out", root, "--drop-field", "mission")
    assert code == 0, err
    (episode,) = Dataset(root).episodes()
    np.testing.assert_array_equal(episode["position"], buffer.observations["position"])
    np.testing.assert_array_equal(episode["cell"][:, 0], buffer.observations["cell"])
    np.testing.assert_array_equal(episode["action"][1:], buffer.actions)
    assert episode.terminated and episode.ret == 3.0


@pytest.mark.parametrize("observation, action, named", [
    (spaces.Tuple([spaces.Discrete(2), spaces.Discrete(3)]), spaces.Discrete(2), "'observations': unsupported "
     "observation space Tuple("),
    (spaces.Dict({"inner": spaces.Dict({"x": spaces.Discrete(2)})}), spaces.Discrete(2), "field 'inner': "
     "unsupported observation space Dict("),
    (spaces.Box(-1, 1, (3,), np.float32), spaces.MultiDiscrete([2, 2]), "field 'action': unsupported action "
     "space MultiDiscrete("),
])
def test_spaces_that_cannot_map_name_the_field_and_the_space(tmp_path, minari_root, observation, action, named):
    observation.seed(0)
    action.seed(0)
    obs = [observation.sample() for _ in range(3)]
    if isinstance(observation, spaces.Tuple):
        obs = tuple(np.array([o[i] for o in obs]) for i in range(2))
    elif isinstance(observation, spaces.Dict):
        obs = {"inner": {"x": np.array([o["inner"]["x"] for o in obs])}}
    else:
        obs = np.stack(obs)
    buffer = EpisodeBuffer(observations=obs, actions=np.stack([action.sample() for _ in range(2)]),
                           rewards=[0.0, 0.0], terminations=[False, True], truncations=[False, False])
    minari_dataset("odd/space-v0", [buffer], observation_space=observation, action_space=action)
    code, _, err = cli("import", "minari", "odd/space-v0", "--out", str(tmp_path / "odd"))
    assert code == 2 and named in err, err
    assert "Minari dataset odd/space-v0" in err
    assert ("--drop-field" in err) == ("'inner'" in named), "the hint only where dropping a Dict key helps"
    assert not (tmp_path / "odd" / "dataset.json").exists()


def test_a_raw_minigrid_dataset_imports_without_its_mission(tmp_path, minari_root):
    """MiniGrid as Minari publishes it: the env's own image (7x7x3 uint8), direction and mission Text."""
    import minigrid  # noqa: F401  (registers the MiniGrid ids)

    buffers = gym_episodes("MiniGrid-Empty-5x5-v0", episodes=3, max_steps=12)
    observation = spaces.Dict({"image": spaces.Box(0, 255, (7, 7, 3), np.uint8), "direction": spaces.Discrete(4),
                               "mission": spaces.Text(64)})  # as Minari's MiniGrid datasets declare it
    minari_dataset("minigrid/raw-v0", buffers, env="MiniGrid-Empty-5x5-v0", observation_space=observation,
                   data_format="arrow")
    root = str(tmp_path / "raw")
    code, _, err = cli("import", "minari", "minigrid/raw-v0", "--out", root, "--drop-field", "mission")
    assert code == 0, err
    dataset = Dataset(root)
    assert sorted(dataset.spec.observations) == ["direction", "image"]
    assert dataset.card.env_config["id"] == "MiniGrid-Empty-5x5-v0"
    for buffer, episode in zip(buffers, dataset.episodes(), strict=True):
        np.testing.assert_array_equal(episode["image"], buffer.observations["image"])
        np.testing.assert_array_equal(episode["direction"][:, 0], buffer.observations["direction"])
        assert episode.truncated == bool(buffer.truncations[-1])


def test_small_uint8_grids_that_minari_hdf5_stored_as_jpeg_are_refused_naming_the_field(tmp_path, minari_root):
    """Minari 0.5.3's hdf5 writer JPEG-encodes small uint8 grids and reads back bytes (docs/minari.md)."""
    grid = spaces.MultiDiscrete(np.full((7, 7, 3), 11), dtype=np.uint8)
    buffer = EpisodeBuffer(observations={"grid": np.random.default_rng(0).integers(0, 11, (3, 7, 7, 3), np.uint8)},
                           actions=np.array([0, 1]), rewards=[0.0, 1.0], terminations=[False, True],
                           truncations=[False, False])
    minari_dataset("grids/jpeg-v0", [buffer], observation_space=spaces.Dict({"grid": grid}),
                   action_space=spaces.Discrete(2), data_format="hdf5")
    code, _, err = cli("import", "minari", "grids/jpeg-v0", "--out", str(tmp_path / "grids"))
    assert code == 2 and "field grid" in err and "grid is uint8[3, " in err, err


def test_import_and_export_on_an_object_store(tmp_path, minari_root, s3_url):
    minari_dataset("cartpole/store-v0", gym_episodes("CartPole-v1", episodes=3), env="CartPole-v1")
    root = f"{s3_url}/cartpole"
    assert cli("import", "minari", "cartpole/store-v0", "--out", root)[0] == 0
    code, _, err = cli("export", "minari", root, "--dataset-id", "cartpole/again-v0")
    assert code == 0, err
    assert cli("import", "minari", "cartpole/again-v0", "--out", f"{s3_url}/again")[0] == 0
    for a, b in zip(Dataset(root).episodes(), Dataset(f"{s3_url}/again").episodes(), strict=True):
        for name in Dataset(root).spec.fields:
            np.testing.assert_array_equal(a[name], b[name])
