"""Policy snapshots: the small acting-only payload that the trainer publishes and collectors load.

    payload = export_policy(agent, policy_version=step)          # trainer
    torch.save(payload, f)
    actor = build_actor(torch.load(f, weights_only=True))        # collector (no trainer import)
    actor.reset(n_envs); actions = actor.act(obs_numpy, greedy=False)

The payload holds only tensors, strings, numbers, lists and dicts: {"format": "dreamstream.policy",
"format_version": FORMAT_VERSION, "version": policy version (the trainer's step), "name": "dreamer",
"policy_class": "dreamer_actor", "spec": EpisodeSpec.to_json(), "model_config": dict,
"state_dict": encoder + RSSM + actor weights}. No decoders, critic or optimiser state. The keys `format`,
`version`, `name`, `policy_class` and `spec` are those dreamstream.collect.snapshot reads; `policy_class`
is a name in its fixed registry (POLICY_CLASSES), never code to import. Format version 2 replaced
version 1's `factory` ("module:function", imported by collectors) with that name.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dreamstream.config import ConfigError, from_dict
from dreamstream.datasets.spec import EpisodeSpec
from dreamstream.errors import UserError
from dreamstream.train.model.acting import ActingModel, PolicyState
from dreamstream.train.model.config import ModelConfig

if TYPE_CHECKING:
    from dreamstream.train.model.agent import Agent

FORMAT = "dreamstream.policy"
FORMAT_VERSION = 2
POLICY_CLASS = "dreamer_actor"
"""This payload's name in dreamstream.collect.snapshot.POLICY_CLASSES (which maps it to build_actor)."""

PREFIXES = {"wm.encoder.": "encoder.", "wm.rssm.": "rssm.", "actor.": "actor."}
"""Agent state-dict prefix -> snapshot (acting-model) prefix: what a snapshot keeps of the agent."""


def export_policy(agent: Agent, policy_version: int = 0) -> dict[str, Any]:
    """The acting-only payload of `agent` (weights copied to CPU)."""
    weights = {}
    for key, value in agent.state_dict().items():
        for src, dst in PREFIXES.items():
            if key.startswith(src):
                weights[dst + key[len(src):]] = value.detach().to("cpu", copy=True)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "version": int(policy_version),
        "name": "dreamer",
        "policy_class": POLICY_CLASS,
        "spec": agent.spec.to_json(),
        "model_config": dataclasses.asdict(agent.config),
        "state_dict": weights,
    }


class PolicyActor:
    """A loaded policy acting for n environments from NumPy observations."""

    def __init__(self, model: ActingModel, spec: EpisodeSpec, policy_version: int,
                 device: torch.device | str = "cpu") -> None:
        self.model = model.to(device).eval()
        self.spec = spec
        self.policy_version = policy_version
        self.device = torch.device(device)
        self.fields = list(model.encoder.encoders)
        self.state: PolicyState | None = None

    def reset(self, n: int) -> None:
        """Start n fresh episodes (call on start; per-env restarts go through obs['is_first'])."""
        self.state = self.model.initial_state(n, self.device)

    def act(self, obs: dict[str, np.ndarray], greedy: bool = False) -> np.ndarray:
        """obs: field -> [n, *shape] arrays (+ optional bool `is_first` [n]). Returns int64 [n] or float32 [n, ...]."""
        if self.state is None:
            raise RuntimeError("call reset(n) before act()")
        missing = [name for name in self.fields if name not in obs]
        if missing:
            raise UserError(f"observation is missing field(s) {missing}; the policy reads {self.fields}")
        names = [*self.fields, "is_first"] if "is_first" in obs else self.fields
        tensors = {name: torch.as_tensor(np.asarray(obs[name]), device=self.device) for name in names}
        n = self.state.deter.shape[0]
        for name in self.fields:
            want = (n, *self.spec.observations[name].shape)
            if tuple(tensors[name].shape) != want:
                raise UserError(f"observation field {name!r} has shape {tuple(tensors[name].shape)}; expected {want}")
        action, self.state = self.model(tensors, self.state, greedy)
        out = action.cpu().numpy()
        return out.astype(np.int64) if self.model.codec.discrete else out.astype(np.float32)


def build_actor(payload: dict[str, Any], device: torch.device | str = "cpu") -> PolicyActor:
    """Rebuild the acting model from a payload (as `torch.load(weights_only=True)` returns it)."""
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(f"not a dreamstream policy snapshot (format {payload.get('format')!r})"
                        if isinstance(payload, dict) else "not a dreamstream policy snapshot")
    if payload.get("format_version") != FORMAT_VERSION:
        raise UserError(f"policy snapshot format_version {payload.get('format_version')!r}; "
                        f"this code reads {FORMAT_VERSION}")
    try:
        config = from_dict(ModelConfig, dict(payload["model_config"]))
    except (ConfigError, KeyError, TypeError, ValueError) as exc:
        raise UserError(f"policy snapshot has no model config this code can read: {exc!r}") from exc
    try:
        spec = EpisodeSpec.from_json(payload["spec"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"policy snapshot has no spec this code can read: {exc!r}") from exc
    model = _acting_model(spec, config, payload.get("state_dict"))
    return PolicyActor(model, spec, int(payload.get("version", 0)), device)


def _acting_model(spec: EpisodeSpec, config: ModelConfig, weights: Any) -> ActingModel:
    """The acting model holding `weights`. Their names and shapes are checked against a model built on the
    meta device first, so a config that declares a larger model than the payload carries allocates nothing."""
    if not isinstance(weights, dict):
        raise UserError("policy snapshot has no state_dict")
    with torch.device("meta"):
        want = {key: tuple(value.shape) for key, value in ActingModel(spec, config).state_dict().items()}
    got = {key: tuple(value.shape) for key, value in weights.items() if isinstance(value, torch.Tensor)}
    missing = sorted(set(want) - set(got))
    unexpected = sorted(set(weights) - set(want))
    wrong = [key for key in want if key in got and got[key] != want[key]]
    if missing or unexpected or wrong:
        raise UserError(f"policy snapshot weights do not fit its model config: missing {missing[:3]}, "
                        f"unexpected {unexpected[:3]}, wrong shapes {wrong[:3]}")
    model = ActingModel(spec, config)
    model.load_state_dict(weights)
    return model
