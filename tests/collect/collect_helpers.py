"""Helpers for the collector tests: running the CLI, reading a dataset back, and a tiny snapshot actor.

`build_actor` is a real snapshot factory (the trainer's lives in dreamstream.train.snapshot): the tests
publish payloads naming `collect_helpers:build_actor` and allow the `collect_helpers` module prefix.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np

from dreamstream.datasets import Dataset, EpisodeSpec

FACTORY = f"{__name__}:build_actor"


class ConstantActor:
    """Always the payload's `action`; raises once `crash_after` acts have passed, in the one process that
    wins the `crash_marker` file (so exactly one of several workers crashes)."""

    def __init__(self, payload: dict):
        self.action = int(payload["action"])
        self.crash_after = payload.get("crash_after")
        self.crash_marker = payload.get("crash_marker")
        self.calls = 0
        self.n = 1

    def reset(self, n_envs: int) -> None:
        self.n = n_envs

    def act(self, obs: dict, greedy: bool = False) -> np.ndarray:
        assert obs["is_first"].shape == (self.n,)
        self.calls += 1
        if self.crash_after is not None and self.calls > self.crash_after and self._wins_crash():
            raise RuntimeError("tiny actor crash (deliberate)")
        return np.full(self.n, self.action, np.int64)

    def _wins_crash(self) -> bool:
        if self.crash_marker is None:
            return True
        if getattr(self, "_won", None) is None:
            try:
                os.close(os.open(self.crash_marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                self._won = True
            except FileExistsError:
                self._won = False
        return self._won


def build_actor(payload: dict) -> ConstantActor:
    return ConstantActor(payload)


def publish(folder: str | Path, spec: EpisodeSpec, version: int, action: int, **extra) -> None:
    """Write a snapshot payload and then the latest.json pointer, as the trainer does."""
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    payload = {"format": "dreamstream.policy", "version": version, "spec": spec.to_json(), "factory": FACTORY,
               "name": "tiny", "action": action, **extra}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    name = f"policy-{version:06d}.pt"
    (folder / name).write_bytes(buffer.getvalue())
    temp = folder / ".latest.json.tmp"
    temp.write_text(json.dumps({"version": version, "path": name}))
    temp.replace(folder / "latest.json")


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
