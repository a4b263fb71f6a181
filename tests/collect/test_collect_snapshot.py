"""SnapshotPolicy in one process: loading, reloading, and crafted publications that must not take over.

A snapshot names its policy class from a fixed registry; its pointer names a file of its own folder; a later
publication that cannot load or act is skipped with a warning while the current version keeps acting.
"""

from __future__ import annotations

import io
import json
import logging

import numpy as np
import pytest
import torch
from collect_helpers import ConstantActor, dreamer_payload, point, publish, publish_bytes, publish_payload

from dreamstream.collect import snapshot
from dreamstream.collect.config import EnvConfig
from dreamstream.collect.envs import make_env
from dreamstream.collect.snapshot import SnapshotPolicy
from dreamstream.errors import UserError


@pytest.fixture
def spec():
    return make_env(EnvConfig(id="MiniGrid-Empty-5x5-v0")).episode_spec


@pytest.fixture(autouse=True)
def tiny_policy_class(monkeypatch):
    """The `tiny` class (ConstantActor) in the registry, as code would add it."""
    monkeypatch.setitem(snapshot.POLICY_CLASSES, "tiny", ConstantActor)


def obs(spec, n: int = 2) -> dict:
    """A zero observation batch of `spec` (what a collector passes to act)."""
    out = {name: np.zeros((n, *f.shape), f.dtype) for name, f in spec.observations.items()}
    return {**out, "is_first": np.zeros(n, bool)}


def policy_at(folder, spec, **kwargs) -> SnapshotPolicy:
    policy = SnapshotPolicy(str(folder), spec, poll_seconds=0.0, **kwargs)
    policy.reset(2)
    return policy


def test_loads_reloads_and_refuses_a_mismatched_newer_version(tmp_path, spec, caplog):
    publish(tmp_path, spec, version=1, action=4)
    policy = policy_at(tmp_path, spec)
    assert (policy.name, policy.version) == ("tiny", 1)
    assert policy.act(obs(spec)).tolist() == [4, 4]
    publish(tmp_path, spec, version=2, action=5)
    assert policy.act(obs(spec)).tolist() == [5, 5] and policy.version == 2
    cartpole = make_env(EnvConfig(id="CartPole-v1")).episode_spec
    publish(tmp_path, cartpole, version=3, action=1)
    with caplog.at_level(logging.WARNING):
        assert policy.act(obs(spec)).tolist() == [5, 5] and policy.version == 2  # v3 refused, v2 kept
    assert "does not match the env" in caplog.text and "keeping policy version 2" in caplog.text
    publish(tmp_path, spec, version=4, action=6)
    assert policy.act(obs(spec)).tolist() == [6, 6] and policy.version == 4


def test_pointer_ahead_of_its_file_is_retried(tmp_path, spec):
    publish(tmp_path, spec, version=1, action=4)
    policy = policy_at(tmp_path, spec)
    point(tmp_path, 2, "policy-000002.pt")
    assert policy.act(obs(spec)).tolist() == [4, 4]  # not there yet: keep version 1
    publish(tmp_path, spec, version=2, action=5)
    assert policy.act(obs(spec)).tolist() == [5, 5]


def test_wait_acts_randomly_until_the_first_snapshot(tmp_path, spec):
    policy = policy_at(tmp_path, spec, wait=True, seed=0)
    policy.reset(3)
    actions = policy.act(obs(spec, 3))
    assert (policy.name, policy.version) == ("random", 0) and actions.shape == (3,) and actions.dtype == np.int64
    publish(tmp_path, spec, version=7, action=1)
    assert policy.act(obs(spec, 3)).tolist() == [1, 1, 1] and policy.version == 7


def test_a_snapshot_names_a_registered_class_never_code(tmp_path, spec):
    publish(tmp_path, spec, version=1, policy_class="dreamstream.cli:main")
    with pytest.raises(UserError, match=r"policy-000001.pt: unknown policy class 'dreamstream.cli:main'.*tiny"):
        SnapshotPolicy(str(tmp_path), spec)
    publish(tmp_path, spec, version=1, policy_class=None, factory="dreamstream.train.model.policy_snapshot:build_actor")
    with pytest.raises(UserError, match="unknown policy class None"):
        SnapshotPolicy(str(tmp_path), spec)


def test_the_setting_that_allowed_factory_modules_is_gone():
    from dreamstream.collect.config import CollectConfig
    from dreamstream.config import ConfigError, from_dict

    with pytest.raises(ConfigError, match="snapshot_factories"):
        from_dict(CollectConfig, {"snapshot_factories": ["collect_helpers"]})


@pytest.mark.parametrize("path", ["../outside.pt", "/etc/passwd", "sub/policy.pt", "s3://bucket/p.pt",
                                  "file:///tmp/p.pt", "..", ""])
def test_a_pointer_names_only_a_file_of_its_own_folder(tmp_path, spec, path):
    folder = tmp_path / "snapshots"
    publish(tmp_path, spec, version=1, action=3)  # a valid snapshot one folder up
    folder.mkdir()
    point(folder, 1, path)
    with pytest.raises(UserError, match=r"snapshots/latest.json: path must be a file name in the pointer's own"):
        SnapshotPolicy(str(folder), spec)


@pytest.mark.parametrize("pointer", ['{"version": true, "path": "p.pt"}', '{"version": 1.0, "path": "p.pt"}',
                                     '{"version": 1}', "[" * 3000, '{"version": 1, "path": "p.pt", "x": 1}'])
def test_a_damaged_pointer_is_named(tmp_path, spec, pointer):
    (tmp_path / "latest.json").write_text(pointer)
    with pytest.raises(UserError, match=r"latest.json: "):
        SnapshotPolicy(str(tmp_path), spec)


def test_a_pointer_with_dotdot_later_is_skipped(tmp_path, spec, caplog):
    folder = tmp_path / "snapshots"
    publish(folder, spec, version=1, action=3)
    publish(tmp_path, spec, version=2, action=6)
    policy = policy_at(folder, spec)
    point(folder, 2, "../policy-000002.pt")
    with caplog.at_level(logging.WARNING):
        assert policy.act(obs(spec)).tolist() == [3, 3] and policy.version == 1
    assert "path must be a file name" in caplog.text


def saved(payload) -> bytes:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def without(payload: dict, key: str) -> dict:
    return {k: v for k, v in payload.items() if k != key}


def drop_tensor(payload: dict) -> dict:
    weights = dict(payload["state_dict"])
    weights.pop(sorted(weights)[0])
    return {**payload, "state_dict": weights}


def wrong_shape(payload: dict) -> dict:
    weights = dict(payload["state_dict"])
    key = sorted(weights)[0]
    weights[key] = torch.zeros(3, 3)
    return {**payload, "state_dict": weights}


def huge_config(payload: dict) -> dict:
    return {**payload, "model_config": {**payload["model_config"], "deter": 10**6}}


BAD_LATER = {
    "missing tensor": (lambda p: saved(drop_tensor(p)), "missing"),
    "wrong shapes": (lambda p: saved(wrong_shape(p)), "wrong shapes"),
    "no model config": (lambda p: saved(without(p, "model_config")), "model config"),
    "config declaring a huge model": (lambda p: saved(huge_config(p)), "do not fit"),
    "no state_dict": (lambda p: saved(without(p, "state_dict")), "no state_dict"),
    "garbage bytes": (lambda p: b"\x80\x04garbage" * 10, "not a loadable snapshot"),
    "truncated file": (lambda p: saved(p)[:300], "not a loadable snapshot"),
    "pickled code": (lambda p: saved({**p, "evil": logging.Logger}), "not a loadable snapshot"),
    "name that is no name": (lambda p: saved({**p, "name": "x" * 65}), "name must be"),
    "version unlike its pointer": (lambda p: saved({**p, "version": 99}), "99 in the file, 2 in its pointer"),
    "policy class naming code": (lambda p: saved({**p, "policy_class": "os:system"}), "unknown policy class"),
}


@pytest.mark.parametrize("damage", list(BAD_LATER))
def test_a_bad_later_publication_is_skipped_and_the_current_version_keeps_acting(tmp_path, spec, caplog, damage):
    make, reason = BAD_LATER[damage]
    publish_payload(tmp_path, dreamer_payload(spec, version=1, action=2))
    policy = policy_at(tmp_path, spec, greedy=True)
    assert policy.act(obs(spec)).tolist() == [2, 2] and (policy.name, policy.version) == ("dreamer", 1)
    bad = publish_bytes(tmp_path, 2, make(dreamer_payload(spec, version=2, action=5)))
    with caplog.at_level(logging.WARNING):
        for _ in range(3):  # refused once, not retried
            assert policy.act(obs(spec)).tolist() == [2, 2] and policy.version == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(bad.name) in warnings[0].getMessage(), caplog.text
    assert reason in warnings[0].getMessage() and "keeping policy version 1" in warnings[0].getMessage()
    publish_payload(tmp_path, dreamer_payload(spec, version=3, action=4))
    assert policy.act(obs(spec)).tolist() == [4, 4] and policy.version == 3


class BrokenActor(ConstantActor):
    """Builds, then cannot act: raises, or returns actions outside the action space."""

    def act(self, obs: dict, greedy: bool = False) -> np.ndarray:
        if self.action < 0:
            raise RuntimeError("cannot act")
        return np.full(self.n, self.action, np.int64)


@pytest.mark.parametrize("action, reason", [(-1, "RuntimeError: cannot act"), (99, "integers in [0, 7)")])
def test_a_publication_that_cannot_act_is_skipped(tmp_path, spec, caplog, monkeypatch, action, reason):
    monkeypatch.setitem(snapshot.POLICY_CLASSES, "broken", BrokenActor)
    publish(tmp_path, spec, version=1, action=4)
    policy = policy_at(tmp_path, spec)
    publish(tmp_path, spec, version=2, action=action, policy_class="broken")
    with caplog.at_level(logging.WARNING):
        assert policy.act(obs(spec)).tolist() == [4, 4] and policy.version == 1
    assert reason in caplog.text and "policy-000002.pt" in caplog.text


def test_a_bad_first_snapshot_is_an_error_or_waited_out(tmp_path, spec, caplog):
    publish_bytes(tmp_path, 1, b"garbage")
    with pytest.raises(UserError, match="policy-000001.pt is not a loadable snapshot"):
        SnapshotPolicy(str(tmp_path), spec)
    with caplog.at_level(logging.WARNING):
        policy = policy_at(tmp_path, spec, wait=True, seed=0)
    assert "acting randomly until a usable snapshot appears" in caplog.text
    assert policy.act(obs(spec)).shape == (2,) and (policy.name, policy.version) == ("random", 0)
    publish(tmp_path, spec, version=2, action=6)
    assert policy.act(obs(spec)).tolist() == [6, 6] and policy.version == 2


def test_a_snapshot_for_another_env_is_an_error_at_start_even_when_waiting(tmp_path, spec):
    publish(tmp_path, make_env(EnvConfig(id="CartPole-v1")).episode_spec, version=1)
    with pytest.raises(UserError, match="does not match the env") as raised:
        SnapshotPolicy(str(tmp_path), spec, wait=True)
    message = str(raised.value)  # how the snapshot's spec differs, each difference naming both sides
    assert "extra field 'vector'" in message and "action {'kind': 'discrete', 'n': 2}, not" in message


def test_not_a_snapshot(tmp_path, spec):
    publish_bytes(tmp_path, 1, saved({"weights": torch.zeros(3)}))
    with pytest.raises(UserError, match="not a dreamstream policy snapshot"):
        SnapshotPolicy(str(tmp_path), spec)
    publish_bytes(tmp_path, 1, b"\x80\x04not a torch file")
    with pytest.raises(UserError, match="weights_only"):
        SnapshotPolicy(str(tmp_path), spec)
    assert json.loads((tmp_path / "latest.json").read_text()) == {"version": 1, "path": "policy-000001.pt"}


def test_a_failing_store_is_retried_and_the_current_version_keeps_acting(tmp_path, spec, caplog):
    publish(tmp_path, spec, version=1, action=4)
    policy = policy_at(tmp_path, spec)

    def unreachable(*args, **kwargs):
        raise RuntimeError("HttpError 503 (any store's own exception type)")

    readable = policy.fs.cat_file
    policy.fs.cat_file = unreachable
    with caplog.at_level(logging.WARNING):
        assert policy.act(obs(spec)).tolist() == [4, 4] and policy.version == 1
    assert "cannot read" in caplog.text and "latest.json: RuntimeError" in caplog.text and "retrying" in caplog.text
    policy.fs.cat_file = readable
    publish(tmp_path, spec, version=2, action=5)
    assert policy.act(obs(spec)).tolist() == [5, 5]
