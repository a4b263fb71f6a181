"""Helpers for the collector tests: running the CLI, reading a dataset back, snapshots and a crashing env.

Snapshots name a policy class from dreamstream.collect.snapshot.POLICY_CLASSES. In-process tests add the
`tiny` class (ConstantActor) with the `tiny_policy_class` fixture; spawned workers only know the real
classes, so `publish_dreamer` writes a real `dreamer_actor` snapshot whose actor always takes one action.
`Crashing-v0` (made as `collect_helpers:Crashing-v0`) raises in one worker, the one that wins a marker file.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import gymnasium
import numpy as np

from dreamstream.datasets import Dataset, EpisodeSpec


class ConstantActor:
    """Always the payload's `action`."""

    def __init__(self, payload: dict):
        self.action = int(payload["action"])
        self.n = 1

    def reset(self, n_envs: int) -> None:
        self.n = n_envs

    def act(self, obs: dict, greedy: bool = False) -> np.ndarray:
        assert obs["is_first"].shape == (self.n,)
        return np.full(self.n, self.action, np.int64)


def publish(folder: str | Path, spec: EpisodeSpec, version: int, action: int = 0, policy_class: str = "tiny",
            name: str = "tiny", **extra) -> Path:
    """Write a snapshot payload and then the latest.json pointer, as the trainer does; -> the file."""
    return publish_payload(folder, {"format": "dreamstream.policy", "format_version": 2, "version": version,
                                    "spec": spec.to_json(), "policy_class": policy_class, "name": name,
                                    "action": action, **extra})


def publish_payload(folder: str | Path, payload: dict) -> Path:
    """torch.save `payload` as `policy-<version>.pt`, then point latest.json at it."""
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return publish_bytes(folder, payload["version"], buffer.getvalue())


def publish_bytes(folder: str | Path, version: int, data: bytes) -> Path:
    """Write `data` as version `version`'s file, then the pointer (a crafted file: any bytes)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"policy-{version:06d}.pt"
    path.write_bytes(data)
    point(folder, version, path.name)
    return path


def point(folder: str | Path, version, path) -> None:
    """Rewrite `folder`/latest.json (any version and path: crafted pointers too)."""
    folder = Path(folder)
    temp = folder / ".latest.json.tmp"
    temp.write_text(json.dumps({"version": version, "path": path}))
    temp.replace(folder / "latest.json")


def dreamer_payload(spec: EpisodeSpec, version: int, action: int) -> dict:
    """A real trainer snapshot (tiny model) whose actor prefers `action` by a wide margin."""

    from dreamstream.train.model.agent import Agent
    from dreamstream.train.model.config import ModelConfig
    from dreamstream.train.model.policy_snapshot import export_policy

    config = ModelConfig(deter=16, stoch=4, classes=4, hidden=16, cnn_depth=4, dense_hidden=16, dense_embed=8,
                         encoder_layers=1, decoder_layers=1, head_layers=1, ac_hidden=16, ac_layers=1)
    payload = export_policy(Agent(spec, config), policy_version=version)
    weights = payload["state_dict"]
    last = sorted((k for k in weights if k.startswith("actor.net.") and k.endswith(".bias")),
                  key=lambda k: int(k.split(".")[2]))[-1]
    weights[last.replace(".bias", ".weight")].zero_()
    weights[last].fill_(-50.0)
    weights[last][action] = 50.0
    return payload


def publish_dreamer(folder: str | Path, spec: EpisodeSpec, version: int, action: int) -> Path:
    return publish_payload(folder, dreamer_payload(spec, version, action))


class Crashing(gymnasium.Env):
    """A 4-vector env that raises on its 50th step in the process that wins the CRASH_MARKER file."""

    observation_space = gymnasium.spaces.Box(-1.0, 1.0, (4,), np.float32)
    action_space = gymnasium.spaces.Discrete(2)

    def __init__(self):
        self.steps = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(4, np.float32), {}

    def step(self, action):
        self.steps += 1
        if self.steps == 50 and _wins(os.environ["CRASH_MARKER"]):
            raise RuntimeError("tiny env crash (deliberate)")
        return np.zeros(4, np.float32), 0.0, False, self.steps % 20 == 0, {}


def _wins(marker: str) -> bool:
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False


gymnasium.register("Crashing-v0", entry_point=Crashing)


def chunks(root: str) -> list:
    """Every chunk of a dataset, verified against its commit record and the spec."""
    dataset = Dataset(root)
    return [chunk for record in dataset.records() for chunk in dataset.read_shard(record, verify=True)]


def validate(root: str) -> tuple[int, str]:
    """Run `dreamstream validate ROOT` in-process -> (exit code, output)."""
    import contextlib

    from dreamstream.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["validate", root])
    return code, out.getvalue()
