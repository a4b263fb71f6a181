"""An agent's policy snapshot and back: the acting part of the agent (encoder, RSSM, actor) as a payload.

    payload = export_policy(agent, policy_version=step)          # trainer
    torch.save(payload, f)
    actor = build_actor(torch.load(f, weights_only=True))        # collectors (policy class `dreamer_actor`)
    actor.reset(n_envs); actions = actor.act(obs_numpy, greedy=False)

The payload's layout is dreamstream.versioned.formats'; this module knows which agent weights it keeps
(ACTING_PREFIXES: no decoders, critic or optimiser state) and how to rebuild a model from them. Collectors
import it through their fixed registry of policy classes; it imports nothing of the trainer process.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from dreamstream.config import ConfigError, from_dict
from dreamstream.datasets.spec import EpisodeSpec
from dreamstream.errors import UserError
from dreamstream.train.model.acting import ActingModel, PolicyState
from dreamstream.train.model.agent import Agent
from dreamstream.train.model.config import ModelConfig
from dreamstream.versioned.formats import DREAMER_ACTOR, check_snapshot, read_spec, snapshot_payload

ACTING_PREFIXES = {"wm.encoder.": "encoder.", "wm.rssm.": "rssm.", "actor.": "actor."}
"""Agent state-dict prefix -> snapshot (acting-model) prefix: what a snapshot keeps of the agent."""


def export_policy(agent: Agent, policy_version: int = 0) -> dict[str, Any]:
    """The acting-only snapshot of `agent` (weights copied to CPU)."""
    weights = {}
    for key, value in agent.state_dict().items():
        for src, dst in ACTING_PREFIXES.items():
            if key.startswith(src):
                weights[dst + key[len(src):]] = value.detach().to("cpu", copy=True)
    return snapshot_payload(policy_version, "dreamer", DREAMER_ACTOR, agent.spec, dataclasses.asdict(agent.config),
                            weights)


def model_of(payload: dict[str, Any]) -> tuple[EpisodeSpec, ModelConfig]:
    """The spec and model config that a snapshot or a checkpoint payload carries."""
    spec = read_spec(payload)
    try:
        return spec, from_dict(ModelConfig, dict(payload["model_config"]))
    except (ConfigError, KeyError, TypeError, ValueError) as exc:
        raise UserError(f"no model config this code can read: {exc!r}") from exc


def load_acting_weights(agent: Agent, payload: dict[str, Any]) -> None:
    """Load a snapshot's weights into the acting part of `agent` (its decoders and critic stay as built)."""
    to_agent = {dst: src for src, dst in ACTING_PREFIXES.items()}
    renamed = {}
    for key, value in _state_dict(payload).items():
        prefix = next((p for p in to_agent if isinstance(key, str) and key.startswith(p)), None)
        if prefix is None:
            raise UserError(f"unexpected snapshot weight {key!r:.80}")
        renamed[to_agent[prefix] + key[len(prefix):]] = value
    try:
        result = agent.load_state_dict(renamed, strict=False)
    except RuntimeError as exc:
        raise UserError(f"snapshot weights do not fit its model config: {str(exc).strip().splitlines()[0]}") from exc
    missing = [k for k in result.missing_keys if k.startswith(tuple(ACTING_PREFIXES))]
    if missing or result.unexpected_keys:
        raise UserError(f"snapshot weights are incomplete: missing {missing[:3]}, "
                        f"unexpected {result.unexpected_keys[:3]}")


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
    check_snapshot(payload)
    spec, config = model_of(payload)
    model = _acting_model(spec, config, _state_dict(payload))
    return PolicyActor(model, spec, payload["version"], device)


def _state_dict(payload: dict[str, Any]) -> dict[Any, Any]:
    weights = payload.get("state_dict")
    if not isinstance(weights, dict):
        raise UserError("policy snapshot has no state_dict")
    return weights


def _acting_model(spec: EpisodeSpec, config: ModelConfig, weights: dict[Any, Any]) -> ActingModel:
    """The acting model holding `weights`. Their names and shapes are checked against a model built on the
    meta device first, so a config that declares a larger model than the payload carries allocates nothing."""
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
