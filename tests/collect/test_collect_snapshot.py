"""SnapshotPolicy in one process: loading, reloading, refusing, and what the factory may be."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from collect_helpers import publish

from dreamstream.collect.config import EnvConfig
from dreamstream.collect.envs import make_env
from dreamstream.collect.snapshot import SnapshotPolicy
from dreamstream.errors import UserError

ALLOWED = ["collect_helpers"]


@pytest.fixture
def spec():
    return make_env(EnvConfig(id="MiniGrid-Empty-5x5-v0")).episode_spec


def obs(n: int = 2) -> dict:
    return {"is_first": np.zeros(n, bool)}


def test_loads_reloads_and_refuses_a_mismatched_newer_version(tmp_path, spec):
    publish(tmp_path, spec, version=1, action=4)
    policy = SnapshotPolicy(str(tmp_path), spec, poll_seconds=0.0, allowed_factories=ALLOWED)
    policy.reset(2)
    assert (policy.name, policy.version) == ("tiny", 1)
    assert policy.act(obs()).tolist() == [4, 4]
    publish(tmp_path, spec, version=2, action=5)
    assert policy.act(obs()).tolist() == [5, 5] and policy.version == 2
    cartpole = make_env(EnvConfig(id="CartPole-v1")).episode_spec
    publish(tmp_path, cartpole, version=3, action=1)
    assert policy.act(obs()).tolist() == [5, 5] and policy.version == 2  # v3 refused, v2 kept
    publish(tmp_path, spec, version=4, action=6)
    assert policy.act(obs()).tolist() == [6, 6] and policy.version == 4


def test_pointer_ahead_of_its_file_is_retried(tmp_path, spec):
    publish(tmp_path, spec, version=1, action=4)
    policy = SnapshotPolicy(str(tmp_path), spec, poll_seconds=0.0, allowed_factories=ALLOWED)
    policy.reset(2)
    (tmp_path / "latest.json").write_text(json.dumps({"version": 2, "path": "policy-000002.pt"}))
    assert policy.act(obs()).tolist() == [4, 4]  # not there yet: keep version 1
    publish(tmp_path, spec, version=2, action=5)
    assert policy.act(obs()).tolist() == [5, 5]


def test_wait_acts_randomly_until_the_first_snapshot(tmp_path, spec):
    policy = SnapshotPolicy(str(tmp_path), spec, poll_seconds=0.0, allowed_factories=ALLOWED, wait=True, seed=0)
    policy.reset(3)
    actions = policy.act(obs(3))
    assert (policy.name, policy.version) == ("random", 0) and actions.shape == (3,) and actions.dtype == np.int64
    publish(tmp_path, spec, version=7, action=1)
    assert policy.act(obs(3)).tolist() == [1, 1, 1] and policy.version == 7


def test_factory_outside_the_allowed_modules(tmp_path, spec):
    publish(tmp_path, spec, version=1, action=0)
    with pytest.raises(UserError, match="outside the allowed modules"):
        SnapshotPolicy(str(tmp_path), spec)  # default: dreamstream. only


def test_not_a_snapshot(tmp_path, spec):
    buffer = io.BytesIO()
    torch.save({"weights": torch.zeros(3)}, buffer)
    (tmp_path / "x.pt").write_bytes(buffer.getvalue())
    (tmp_path / "latest.json").write_text(json.dumps({"version": 1, "path": "x.pt"}))
    with pytest.raises(UserError, match="not a dreamstream policy snapshot"):
        SnapshotPolicy(str(tmp_path), spec, allowed_factories=ALLOWED)
    (tmp_path / "x.pt").write_bytes(b"\x80\x04not a torch file")
    with pytest.raises(UserError, match="weights_only"):
        SnapshotPolicy(str(tmp_path), spec, allowed_factories=ALLOWED)
