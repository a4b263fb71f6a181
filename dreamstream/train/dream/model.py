"""DreamModel: a loaded agent for inspection: encode an episode, imagine open-loop, intervene, decode.

Rows follow the dataset's convention: row t holds observation t and the action that led to it.
`imagine(post, start)` starts from the posterior of row `start` and predicts rows start+1, start+2, ...
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dreamstream.datasets.spec import EpisodeSpec, spec_difference
from dreamstream.errors import UserError
from dreamstream.train.dream.latents import Latents
from dreamstream.train.model.agent import Agent
from dreamstream.train.model.config import ModelConfig
from dreamstream.train.model.encoders import MAP_FIELD
from dreamstream.train.model.rssm import RSSMState

CHECKPOINT, SNAPSHOT = "checkpoint", "snapshot"
DECODE_CHUNK = 256
"""States decoded per pass (bounds memory on long episodes)."""


class DreamModel:
    """A loaded agent for inspection (eval mode, no gradients). `kind` is `checkpoint` or `snapshot`."""

    def __init__(self, agent: Agent, kind: str, url: str, step: int, device: torch.device | str = "cpu"):
        self.agent = agent.to(device).eval()
        self.kind, self.url, self.step = kind, url, step
        self.device = torch.device(device)
        self.wm = agent.wm

    @property
    def spec(self) -> EpisodeSpec:
        return self.agent.spec

    @property
    def config(self) -> ModelConfig:
        return self.agent.config

    @property
    def can_decode(self) -> bool:
        """Only a checkpoint has the decoders and heads."""
        return self.kind == CHECKPOINT

    @property
    def decoded_fields(self) -> list[str]:
        """Observation fields `decode` predicts: the reconstructed inputs, and `map` when a probe was trained."""
        fields = list(self.wm.decoders)
        return [*fields, MAP_FIELD] if self.agent.probe is not None else fields

    def check_spec(self, spec: EpisodeSpec, where: str) -> None:
        """UserError (one line, naming the differences) unless `spec` is the spec the model was trained on."""
        if spec != self.spec:
            raise UserError(f"{where} does not match the spec that {self.kind} {self.url} was trained on: "
                            f"{spec_difference(self.spec, spec)}")

    # -- states -------------------------------------------------------------------------------------------

    def batch(self, episode: dict[str, np.ndarray]) -> dict[str, Tensor]:
        """One episode's rows as a [T, 1] batch on the model's device; the state starts from zero at row 0."""
        missing = [name for name in (*self.wm.input_fields, "action", "is_first") if name not in episode]
        if missing:
            raise UserError(f"episode is missing field(s) {missing}")
        out = {name: torch.as_tensor(np.asarray(array)).unsqueeze(1).to(self.device)
               for name, array in episode.items() if name in self.spec.fields}
        reset = out["is_first"].clone()
        reset[0] = True
        out["reset"] = reset
        return out

    @torch.no_grad()
    def encode(self, episode: dict[str, np.ndarray], sample: bool = False) -> Latents:
        """Posterior states of every row (the mode of each latent unless `sample`)."""
        batch = self.batch(episode)
        seq = self.wm.observe(batch, self.wm.rssm.initial(1, self.device), sample=sample)
        steps = len(batch["reset"])
        return Latents(seq.deter[:, 0], seq.stoch[:, 0], seq.post[:, 0], seq.prior[:, 0], np.arange(steps))

    @torch.no_grad()
    def imagine(self, latents: Latents, start: int, horizon: int | None = None, actions: Any = None,
                greedy: bool = True, sample: bool = False) -> Latents:
        """Roll the prior forward open-loop from `latents[start]`: rows latents.steps[start] + 1, + 2, ...

        Under `actions` (env actions, int [H] or float [H, *shape]; action i leads to the i-th predicted row)
        or, when None, under the actor (its mode when `greedy`, else a sample) for `horizon` steps. The latents
        are the prior's mode unless `sample`.
        """
        if not -len(latents) <= start < len(latents):
            raise UserError(f"start {start} is outside the {len(latents)} given states")
        start = start % len(latents)
        codec, rssm = self.wm.codec, self.wm.rssm
        if actions is not None:
            actions = np.asarray(actions)
            horizon = len(actions) if horizon is None else horizon
            if horizon > len(actions):
                raise UserError(f"horizon {horizon} needs {horizon} actions; got {len(actions)}")
            actions = actions[:horizon]
            tensor = torch.as_tensor(actions).to(self.device)
            vectors = codec.encode(tensor, torch.zeros(horizon, dtype=torch.bool, device=self.device))
        elif horizon is None:
            raise UserError("imagine needs `actions` or a `horizon` (to act with the policy)")
        if horizon < 1:
            raise UserError(f"horizon must be at least 1, not {horizon}")
        state = RSSMState(latents.deter[start : start + 1], latents.stoch[start : start + 1])
        deters, stochs, priors, taken = [], [], [], []
        for i in range(horizon):
            if actions is None:
                raw = self.agent.actor.act(rssm.features(state), greedy=greedy)
                vector = self.agent.actor.dist.squash(raw)
                taken.append(codec.decode(vector)[0].cpu().numpy())
            else:
                vector = vectors[i : i + 1]
            state, prior = rssm.img_step(state, vector, sample=sample)
            deters.append(state.deter[0])
            stochs.append(state.stoch[0])
            priors.append(prior[0])
        prior = torch.stack(priors)
        steps = int(latents.steps[start]) + 1 + np.arange(horizon)
        return Latents(torch.stack(deters), torch.stack(stochs), prior, prior, steps,
                       actions if actions is not None else np.stack(taken))

    def open_loop(self, episode: dict[str, np.ndarray], latents: Latents, start: int, horizon: int) -> Latents:
        """`imagine` under the episode's recorded actions, clipped to the rows the episode has."""
        row = int(latents.steps[start])
        actions = episode["action"][row + 1 : row + 1 + horizon]
        if len(actions) == 0:
            raise UserError(f"row {row} is the episode's last ({len(episode['action'])} rows): nothing to predict")
        return self.imagine(latents, start, actions=actions)

    def intervene(self, latents: Latents, variable: int, value: float, steps: Sequence[int] | None = None) -> Latents:
        """A copy of `latents` with stochastic variable `variable` set to class `value` (categorical latents: its
        one-hot) or to the number `value` (Gaussian latents), on the given rows (indices; default all)."""
        cfg = self.config
        if not 0 <= variable < cfg.stoch:
            raise UserError(f"latent variable {variable} does not exist: the model has {cfg.stoch} "
                            f"(0..{cfg.stoch - 1})")
        rows = slice(None) if steps is None else torch.as_tensor(np.asarray(steps), dtype=torch.long)
        stoch = latents.stoch.clone()
        if cfg.classes:
            if int(value) != value or not 0 <= int(value) < cfg.classes:
                raise UserError(f"class {value} does not exist: each latent variable has {cfg.classes} classes")
            grid = stoch.view(len(latents), cfg.stoch, cfg.classes)
            grid[rows, variable] = 0.0
            grid[rows, variable, int(value)] = 1.0
        else:
            stoch[rows, variable] = float(value)
        return dataclasses.replace(latents, stoch=stoch)

    def classes(self, latents: Latents) -> np.ndarray:
        """The class of every categorical latent variable: int64 [T, stoch] (categorical latents only)."""
        if not self.config.classes:
            raise UserError("the model has Gaussian latents (model.classes=0): there are no classes")
        return latents.stoch.view(len(latents), self.config.stoch, self.config.classes).argmax(-1).cpu().numpy()

    # -- decoding -----------------------------------------------------------------------------------------

    @torch.no_grad()
    def decode(self, latents: Latents) -> dict[str, np.ndarray]:
        """What the model's heads make of the states: every reconstructed field [T, ...] in the data's dtype,
        `map` (the map probe's prediction, when trained), `reward` (expected reward on arriving at the row) and
        `cont` (probability that the episode goes on after it), float32 [T]."""
        if not self.can_decode:
            raise UserError(f"{self.url} is a policy snapshot (encoder, RSSM and actor only): decoding observations, "
                            "rewards and terminations needs a checkpoint (<run>/checkpoints)")
        parts: list[dict[str, np.ndarray]] = []
        for begin in range(0, len(latents), DECODE_CHUNK):
            part = latents[begin : begin + DECODE_CHUNK]
            features = self.wm.rssm.features(part.state)
            out = {name: decoder.decode(features) for name, decoder in self.wm.decoders.items()}
            if self.agent.probe is not None:
                out[MAP_FIELD] = self.agent.probe.decoder.decode(features)
            out["reward"] = self.wm.reward.mean(features)
            out["cont"] = self.wm.terminal.cont(features)
            parts.append({k: v.float().cpu().numpy() if v.is_floating_point() else v.cpu().numpy()
                          for k, v in out.items()})
        decoded = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        for name in self.decoded_fields:
            decoded[name] = decoded[name].astype(self.spec.observations[name].dtype, copy=False)
        return decoded
