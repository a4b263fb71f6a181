"""Policy snapshots: export -> torch.save -> torch.load(weights_only=True) -> build_actor -> act."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from agent_fixtures import grid_spec, image_spec, random_batch, tiny_config, vector_spec

from dreamstream.errors import UserError
from dreamstream.train.model.agent import Agent
from dreamstream.train.model.policy_snapshot import build_actor, export_policy


def round_trip(payload: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def obs_rows(spec, batch: dict[str, torch.Tensor], t: int) -> dict[str, np.ndarray]:
    """Row t of every field, as a collector would batch it (observations + row fields)."""
    return {name: batch[name][t].numpy() for name in [*spec.observations, "is_first", "reward", "is_last"]}


@pytest.mark.parametrize("make_spec", [image_spec, grid_spec, vector_spec])
@pytest.mark.parametrize("greedy", [False, True])
def test_snapshot_actor_acts_like_the_agent(make_spec, greedy: bool) -> None:
    spec = make_spec()
    agent = Agent(spec, tiny_config())
    payload = round_trip(export_policy(agent, policy_version=42))
    assert payload["version"] == 42 and payload["format"] == "dreamstream.policy"
    assert not any(key.startswith(("decoders", "critic", "wm.")) for key in payload["state_dict"])
    actor = build_actor(payload)
    assert actor.policy_version == 42

    batch = random_batch(spec, steps=5, batch=3)
    batch["is_first"][3, 1] = True  # env 1 starts a new episode at step 3
    actor.reset(3)
    state = None
    for t in range(5):
        torch.manual_seed(t)
        expected, state = agent.policy({k: torch.as_tensor(v) for k, v in obs_rows(spec, batch, t).items()},
                                       state, greedy=greedy)
        torch.manual_seed(t)
        got = actor.act(obs_rows(spec, batch, t), greedy=greedy)
        if spec.action.kind == "discrete":
            assert got.shape == (3,) and got.dtype == np.int64
            assert ((0 <= got) & (got < spec.action.n)).all()
        else:
            assert got.shape == (3, *spec.action.shape) and got.dtype == np.float32
            assert (got >= np.array(spec.action.low) - 1e-6).all() and (got <= np.array(spec.action.high) + 1e-6).all()
        np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5, atol=1e-6)


def test_is_first_resets_one_env() -> None:
    spec = grid_spec()
    agent = Agent(spec, tiny_config())
    batch = random_batch(spec, steps=3, batch=2)
    obs = {name: batch[name][2] for name in spec.observations}
    _, state = agent.policy({name: batch[name][0] for name in spec.observations})
    _, state = agent.policy({name: batch[name][1] for name in spec.observations}, state)
    torch.manual_seed(0)
    _, fresh = agent.policy({**obs, "is_first": torch.tensor([True, True])}, state)
    torch.manual_seed(0)
    _, mixed = agent.policy({**obs, "is_first": torch.tensor([True, False])}, state)
    torch.testing.assert_close(mixed.deter[0], fresh.deter[0])
    assert not torch.allclose(mixed.deter[1], fresh.deter[1])


def test_snapshot_is_small() -> None:
    agent = Agent(image_spec(), tiny_config())
    payload = export_policy(agent)
    acting = sum(t.numel() for t in payload["state_dict"].values())
    total = sum(t.numel() for t in agent.state_dict().values())
    assert acting < 0.7 * total


def test_bad_payloads_and_observations_are_refused() -> None:
    agent = Agent(grid_spec(), tiny_config())
    payload = export_policy(agent)
    with pytest.raises(UserError, match="not a dreamstream policy"):
        build_actor({**payload, "format": "something.else"})
    with pytest.raises(UserError, match="format_version 99"):
        build_actor({**payload, "format_version": 99})
    with pytest.raises(UserError, match="model config"):
        build_actor({**payload, "model_config": {**payload["model_config"], "no_such_key": 1}})
    with pytest.raises(UserError, match="no model config"):
        build_actor({k: v for k, v in payload.items() if k != "model_config"})
    weights = dict(payload["state_dict"])
    weights.pop(sorted(weights)[0])
    with pytest.raises(UserError, match="do not fit its model config: missing"):
        build_actor({**payload, "state_dict": weights})
    with pytest.raises(UserError, match="do not fit its model config"):  # checked on the meta device: no 4 GB
        build_actor({**payload, "model_config": {**payload["model_config"], "deter": 2**20}})
    actor = build_actor(payload)
    actor.reset(2)
    direction = np.zeros((2, 1), np.uint8)
    with pytest.raises(UserError, match=r"missing field\(s\) \['grid'\]"):
        actor.act({"map": np.zeros((2, 5, 5, 3), np.uint8), "direction": direction})
    with pytest.raises(UserError, match="'grid' has shape"):
        actor.act({"grid": np.zeros((3, 7, 7, 3), np.uint8), "direction": direction})


def test_collectors_load_it_through_the_published_layout(tmp_path: Path) -> None:
    """The contract with dreamstream.collect: VersionedFiles publishes, SnapshotPolicy loads and acts."""
    from dreamstream.collect.snapshot import SnapshotPolicy
    from dreamstream.versioned.files import VersionedFiles

    spec = grid_spec(with_map=False)
    agent = Agent(spec, tiny_config())
    url = str(tmp_path / "policy")
    VersionedFiles(url, "policy").save(export_policy(agent, policy_version=7), 7)
    policy = SnapshotPolicy(url, spec)
    policy.reset(2)
    assert policy.version == 7
    batch = random_batch(spec, steps=1, batch=2)
    actions = policy.act(obs_rows(spec, batch, 0))
    assert actions.shape == (2,) and actions.dtype == np.int64


@pytest.mark.parametrize("path", ["../policy-000000007.pt", "/tmp/policy-000000007.pt", "s3://bucket/p.pt"])
def test_checkpoint_and_dream_pointers_name_only_files_of_their_own_folder(tmp_path: Path, path: str) -> None:
    """VersionedFiles (resume, publication) and `dreamstream dream` read latest.json as collectors do."""
    from dreamstream.train.dream.api import load_model
    from dreamstream.versioned.files import VersionedFiles

    run = tmp_path / "run"
    files = VersionedFiles(str(run / "snapshots"), "policy")
    files.save(export_policy(Agent(grid_spec(), tiny_config()), policy_version=7), 7)
    (run / "snapshots" / "latest.json").write_text(json.dumps({"version": 7, "path": path}))
    refused = r"snapshots/latest.json: path must be a file name in the pointer's own folder"
    with pytest.raises(UserError, match=refused):
        files.latest_version()
    with pytest.raises(UserError, match=refused):
        load_model(str(run / "snapshots"))
    with pytest.raises(UserError, match=refused):
        load_model(str(run))


def test_the_payload_names_a_registered_policy_class() -> None:
    from dreamstream.collect.snapshot import POLICY_CLASSES

    payload = export_policy(Agent(grid_spec(), tiny_config()))
    assert payload["policy_class"] in POLICY_CLASSES and "factory" not in payload
