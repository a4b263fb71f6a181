"""The real collector (spawned workers, real envs, real writer) through `dreamstream collect` and as a library."""

from __future__ import annotations

import json

import numpy as np
import pytest
from collect_helpers import chunks, validate

from dreamstream.cli import main
from dreamstream.collect.collector import Collector
from dreamstream.collect.config import CollectConfig, EnvConfig
from dreamstream.collect.envs import make_env
from dreamstream.collect.loop import collect_loop
from dreamstream.collect.policies import make_policy
from dreamstream.datasets import Dataset, DatasetCard, EpisodeWriter, WriterConfig

PRESETS = ["atari_pong", "atari_breakout", "minigrid_empty", "minigrid_doorkey", "minigrid_fourrooms", "cartpole",
           "pendulum"]


def collect(capsys, *args: str) -> dict:
    code = main(["collect", "--no-progress", *args])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out.strip().splitlines()[-1])["collect"]


def episodes_of(root: str) -> dict[str, list]:
    out: dict[str, list] = {}
    for chunk in chunks(root):
        out.setdefault(chunk.row.episode, []).append(chunk)
    return {k: sorted(v, key=lambda c: c.row.chunk) for k, v in out.items()}


@pytest.mark.parametrize("preset", PRESETS)
def test_each_preset_collects_episodes_that_validate(capsys, tmp_path, preset):
    root = str(tmp_path / preset)
    overrides = ["--set", "env.time_limit=150"] if preset.startswith("atari") else []
    summary = collect(capsys, "--env", preset, "--out", root, "--episodes", "2", *overrides)
    assert summary["episodes"] == 2 and summary["failed_workers"] == []
    assert validate(root)[0] == 0
    dataset = Dataset(root)
    assert dataset.card.preset == preset
    episodes = episodes_of(root)
    assert len(episodes) == 2
    for parts in episodes.values():
        first, last = parts[0].arrays, parts[-1].arrays
        assert first["is_first"][0] and last["is_last"][-1] and parts[0].row.policy == "random"
        assert not np.any(first["action"][0]), "the first row's action is zeros"
    if preset.startswith("atari"):
        image = next(iter(episodes.values()))[0].arrays["image"]
        assert image.shape[1:] == (64, 64, 3) and image.dtype == np.uint8
        assert image[0].mean() > 20, "the first frame is black"


def test_two_workers_and_a_step_budget(capsys, tmp_path):
    root = str(tmp_path / "ds")
    summary = collect(capsys, "--env", "MiniGrid-Empty-5x5-v0", "--out", root, "--workers", "2", "--steps", "301",
                      "--seed", "7")
    assert summary["steps"] == 301
    records = Dataset(root).records()
    assert sum(r.steps for r in records) == 301
    assert len({r.writer for r in records}) == 2  # one writer id per worker
    assert validate(root)[0] == 0


def write_in_process(root: str, env_config: EnvConfig, policy: str = "random", steps: int = 400) -> None:
    """The workers' loop in this process (real env, policy and writer), for env-level checks."""
    env = make_env(env_config)
    spec = env.episode_spec
    card = DatasetCard.create(spec, env_id=env_config.id)
    with EpisodeWriter(root, card, WriterConfig(chunk_steps=64)) as writer:
        collect_loop([env], make_policy(policy, spec, seed=0),
                     lambda row, slot, name, version: writer.add_step(row, slot, name, version), [0], max_steps=steps)


@pytest.mark.parametrize(
    "env_id",
    ["MiniGrid-Dynamic-Obstacles-5x5-v0", "MiniGrid-MultiRoom-N2-S4-v0", "MiniGrid-Unlock-v0",
     "MiniGrid-RedBlueDoors-6x6-v0"],
)
def test_named_minigrid_envs_collect(tmp_path, env_id):
    root = str(tmp_path / "ds")
    write_in_process(root, EnvConfig(id=env_id, map=True))
    assert validate(root)[0] == 0
    spec = Dataset(root).spec
    rows = sum(c.row.steps for c in chunks(root))
    assert rows == 400
    width, height = make_env(EnvConfig(id=env_id)).width, make_env(EnvConfig(id=env_id)).height
    assert spec.observations["map"].shape == (width, height, 3)


def test_minigrid_time_out_is_last_without_terminal(tmp_path):
    root = str(tmp_path / "ds")
    write_in_process(root, EnvConfig(id="MiniGrid-FourRooms-v0", time_limit=10), steps=60)
    ends = [c for c in chunks(root) if c.row.is_last]
    assert ends
    for chunk in ends:
        assert chunk.arrays["is_last"][-1] and not chunk.arrays["is_terminal"].any()
        assert chunk.row.start + chunk.row.steps == 11  # the reset row + 10 steps


def test_reached_goal_is_terminal(tmp_path):
    root = str(tmp_path / "ds")
    write_in_process(root, EnvConfig(id="MiniGrid-Empty-5x5-v0", map=True), policy="expert", steps=30)
    ends = [c for c in chunks(root) if c.row.is_last]
    assert ends
    for chunk in ends:
        assert chunk.row.is_terminal and chunk.arrays["is_terminal"][-1] and chunk.arrays["reward"][-1] > 0


def test_expert_policy_through_the_collector_turns_on_the_map(capsys, tmp_path):
    root = str(tmp_path / "ds")
    summary = collect(capsys, "--env", "MiniGrid-DoorKey-5x5-v0", "--out", root, "--episodes", "3",
                      "--policy", "expert")
    assert summary["episodes"] == 3 and summary["return_min"] > 0
    assert "map" in Dataset(root).spec.observations
    assert {c.row.policy for c in chunks(root)} == {"expert"}


@pytest.mark.slow
@pytest.mark.parametrize("store", ["s3", "gcs"])
def test_collect_to_object_stores(capsys, request, store):
    root = request.getfixturevalue(f"{store}_url") + "/minigrid"
    summary = collect(capsys, "--env", "minigrid_empty", "--out", root, "--workers", "2", "--steps", "200")
    assert summary["steps"] == 200
    assert validate(root)[0] == 0
    assert sum(c.row.steps for c in chunks(root)) == 200


def test_library_start_poll_stop(tmp_path):
    """The trainer's way: start workers without a budget, poll episodes, stop them cleanly."""
    root = str(tmp_path / "ds")
    collector = Collector(EnvConfig(id="CartPole-v1"), root, CollectConfig(workers=2),
                          WriterConfig(shard_max_age_s=0.2))
    collector.start()
    seen = []
    while len(seen) < 10:
        seen.extend(collector.poll(timeout=1.0))
        assert collector.running
    summary = collector.stop()
    assert summary.failed == {} and summary.interrupted and summary.episodes >= 10
    assert not collector.running
    assert validate(root)[0] == 0
    assert sum(c.row.steps for c in chunks(root)) == summary.steps


@pytest.mark.slow
def test_mlflow_logging(capsys, tmp_path, mlflow_uri):
    from mlflow.tracking import MlflowClient

    root = str(tmp_path / "ds")
    collect(capsys, "--env", "cartpole", "--out", root, "--episodes", "4", "--mlflow", mlflow_uri)
    client = MlflowClient(tracking_uri=mlflow_uri)
    experiment = client.get_experiment_by_name("dreamstream-collect")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert len(client.get_metric_history(run.info.run_id, "episode/return")) == 4
    assert client.get_metric_history(run.info.run_id, "steps_per_s_total")
    assert run.data.params["env.id"] == "CartPole-v1"


def test_progress_bar(capsys, tmp_path):
    code = main(["collect", "--progress", "--env", "cartpole", "--out", str(tmp_path / "ds"), "--steps", "300"])
    captured = capsys.readouterr()
    assert code == 0
    assert "steps_per_s" in captured.err and "300/300" in captured.err


@pytest.mark.slow
def test_bench_collect_prints_the_ratio_last(capsys, tmp_path):
    code = main(["bench", "collect", "--env", "minigrid_empty", "--steps", "300", "--repeats", "1",
                 "--worker-steps", "200", "--dir", str(tmp_path)])
    assert code == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["bench"] == "collect" and last["env"] == "minigrid_empty" and list(last)[-1] == "ratio"
    assert 0 < last["ratio"] < 2 and len(last["workers2_per_worker_steps_per_s"]) == 2
