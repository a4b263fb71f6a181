"""Look inside a trained world model: posterior states, open-loop dreams, decoded predictions, interventions.

    from dreamstream.datasets import Dataset
    from dreamstream.train.dream.api import load_episode, load_model, prediction_errors

    model = load_model("runs/minigrid")             # a run folder, a checkpoints folder, or a .pt file (any URL)
    data = Dataset("data/minigrid")
    model.check_spec(data.spec, data.url)           # UserError when the model was trained on another spec
    episode = load_episode(data, episode_id)        # all rows of one episode: field -> [T, ...] NumPy arrays
    post = model.encode(episode)                    # posterior state of every row: Latents of length T
    dream = model.imagine(post, start=10, actions=episode["action"][11:26])   # rows 11..25, recorded actions
    mine = model.imagine(post, start=10, horizon=15)                           # ... or under the policy
    recon, pred = model.decode(post), model.decode(dream)   # field -> [T, ...] (+ reward, cont, map probe)
    errors = prediction_errors(model.spec, episode, pred, dream.steps)       # per-step errors per field
    edited = model.intervene(post, variable=3, value=7)     # z_3 := class 7 on every row (or `steps=`)
    model.decode(edited)                                    # what the decoders make of the edited states

A checkpoint (the trainer's `<run>/checkpoints/`) holds the whole agent and can do all of this. A policy
snapshot (`<run>/snapshots/`) holds only the encoder, RSSM and actor: it encodes and imagines, but decoding
(reconstructions, predictions, rewards) needs a checkpoint. Every file loads with torch.load(weights_only=True).

Conventions (the dataset's): row t holds observation t and the action that led to it. `imagine(post, start)`
starts from the posterior of row `start` (rows 0..start observed) and predicts rows start+1, start+2, ...;
action i of `actions` is the one that leads to row start+1+i.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dreamstream.config import ConfigError, from_dict
from dreamstream.datasets.episodes import EpisodeIndex
from dreamstream.datasets.reader import Dataset
from dreamstream.datasets.spec import EpisodeSpec, spec_difference
from dreamstream.errors import UserError
from dreamstream.train.model.agent import Agent
from dreamstream.train.model.config import ModelConfig
from dreamstream.train.model.encoders import MAP_FIELD
from dreamstream.train.model.policy_snapshot import load_acting_weights, model_of
from dreamstream.train.model.rssm import RSSMState
from dreamstream.versioned.formats import check_snapshot, is_checkpoint, is_snapshot
from dreamstream.versioned.locate import SNAPSHOTS, Located, latest_file, locate

log = logging.getLogger(__name__)

CHECKPOINT, SNAPSHOT = "checkpoint", "snapshot"
DECODE_CHUNK = 256
"""States decoded per pass (bounds memory on long episodes)."""


@dataclasses.dataclass(frozen=True)
class Latents:
    """Model states of consecutive rows of one episode.

    deter [T, deter] and stoch [T, stoch_size] (flat: one one-hot of `classes` per categorical variable, or
    Gaussian values) are what the heads read; `dist` [T, P] are the parameters of the distribution each z was
    taken from (the posterior for `encode`, the prior for `imagine`), `prior` [T, P] the prior's. `steps`
    are the episode rows the states stand for; `actions` the env actions that led to them (None: recorded).
    """

    deter: Tensor
    stoch: Tensor
    dist: Tensor
    prior: Tensor
    steps: np.ndarray
    actions: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.deter.shape[0])

    def __getitem__(self, index: slice | Sequence[int] | np.ndarray) -> Latents:
        """A sub-sequence (a slice or row indices): still a Latents."""
        idx = index if isinstance(index, slice) else torch.as_tensor(np.asarray(index), dtype=torch.long)
        rows = index if isinstance(index, slice) else np.asarray(index)
        return Latents(self.deter[idx], self.stoch[idx], self.dist[idx], self.prior[idx], self.steps[rows],
                       None if self.actions is None else self.actions[rows])

    @property
    def state(self) -> RSSMState:
        return RSSMState(self.deter, self.stoch)

    def to_numpy(self, prefix: str = "") -> dict[str, np.ndarray]:
        """Every array, for np.savez (`prefix` + name)."""
        out = {name: getattr(self, name).detach().float().cpu().numpy()
               for name in ("deter", "stoch", "dist", "prior")}
        out["steps"] = self.steps
        if self.actions is not None:
            out["actions"] = self.actions
        return {prefix + k: v for k, v in out.items()}


def _concat(parts: list[Latents]) -> Latents:
    actions = None if any(p.actions is None for p in parts) else np.concatenate([p.actions for p in parts])
    return Latents(*(torch.cat([getattr(p, n) for p in parts]) for n in ("deter", "stoch", "dist", "prior")),
                   np.concatenate([p.steps for p in parts]), actions)


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


# -- loading ----------------------------------------------------------------------------------------------------


def load_model(url: str, device: torch.device | str = "cpu", storage_options: dict[str, Any] | None = None
               ) -> DreamModel:
    """Load a checkpoint or a policy snapshot from any fsspec URL: a `.pt` file, a folder with a `latest.json`
    pointer (`<run>/checkpoints`, `<run>/snapshots`), or a run folder (its latest checkpoint, else its latest
    snapshot). A checkpoint file holds no spec: it is read from the run's snapshots, or from run.json and
    the run's training-data card."""
    file = locate(url, storage_options)
    payload = file.load("checkpoint or policy snapshot")
    if is_snapshot(payload):
        try:
            spec, config = model_of(check_snapshot(payload))
            agent = Agent(spec, config)
            load_acting_weights(agent, payload)
        except UserError as exc:
            raise UserError(f"{file.url}: {exc}") from exc
        log.info("%s is a policy snapshot: it encodes and imagines; decoding needs a checkpoint", file.url)
        return DreamModel(agent, SNAPSHOT, file.url, payload["version"], device)
    if is_checkpoint(payload):
        if "spec" in payload and "model_config" in payload:
            spec, config = _model_of(payload, file.url)
        else:
            spec, config = _run_spec_and_config(file, storage_options)
        agent = Agent(spec, config)
        try:
            agent.load_state_dict(payload["learner"]["agent"])
        except (RuntimeError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise UserError(f"{file.url} does not fit the model its run describes: {first}") from exc
        return DreamModel(agent, CHECKPOINT, file.url, int(payload.get("step", 0)), device)
    keys = f" (keys {sorted(payload)[:6]})" if isinstance(payload, dict) else ""
    raise UserError(f"{file.url} is not a dreamstream checkpoint or policy snapshot{keys}")


def _model_of(payload: dict[str, Any], shown: str) -> tuple[EpisodeSpec, ModelConfig]:
    try:
        return model_of(payload)
    except UserError as exc:
        raise UserError(f"{shown}: {exc}") from exc


def _run_spec_and_config(file: Located, storage_options: dict[str, Any] | None) -> tuple[EpisodeSpec, ModelConfig]:
    """The spec and model config of the run a checkpoint file belongs to (<run>/checkpoints/<file>)."""
    fs, run = file.fs, file.path.rsplit("/", 2)[0]
    try:
        snapshot = latest_file(fs, f"{run}/{SNAPSHOTS}", f"{fs.unstrip_protocol(run)}/{SNAPSHOTS}")
        payload = None if snapshot is None else snapshot.load("policy snapshot")
        if is_snapshot(payload):
            return _model_of(payload, file.url)
    except UserError:
        pass
    try:
        settings = json.loads(fs.cat_file(f"{run}/run.json"))["settings"]
        config = from_dict(ModelConfig, dict(settings["model"]))
    except (FileNotFoundError, ValueError, KeyError, ConfigError) as exc:
        raise UserError(f"{file.url} holds no spec or model config, and its run folder has neither a policy "
                        f"snapshot nor a readable run.json: {exc!r}") from exc
    data = (settings.get("train") or {}).get("data") or f"{fs.unstrip_protocol(run)}/data"
    try:
        return Dataset(data, storage_options).spec, config
    except (FileNotFoundError, UserError) as exc:
        raise UserError(f"{file.url} holds no spec: its run has no policy snapshot and its training data {data} "
                        f"cannot be read: {exc}") from exc


# -- data -------------------------------------------------------------------------------------------------------


def episode_ids(dataset: Dataset, complete: bool = False) -> list[str]:
    """Episode ids in commit order (only the complete ones, datasets.episodes, with `complete`)."""
    index = EpisodeIndex(dataset.records())
    return [e.id for e in index.complete] if complete else index.ids


def load_episode(dataset: Dataset, episode: str | None = None) -> tuple[str, dict[str, np.ndarray]]:
    """(id, rows) of `episode`, or of the first complete episode; UserError listing a few ids if it is absent."""
    index = EpisodeIndex(dataset.records())
    if not len(index):
        raise UserError(f"dataset {dataset.url} has no committed episodes")
    if episode is None:
        episode = (index.complete or list(index))[0].id
    elif episode not in index:
        few = ", ".join(index.ids[:5])
        raise UserError(f"episode {episode!r} is not in dataset {dataset.url}; it has {len(index)} episodes, "
                        f"e.g. {few}")
    return episode, dataset.episode(episode)


# -- errors -----------------------------------------------------------------------------------------------------


def prediction_errors(spec: EpisodeSpec, episode: dict[str, np.ndarray], decoded: dict[str, np.ndarray],
                      steps: np.ndarray) -> dict[str, np.ndarray]:
    """Per-step errors [len(steps)] of decoded predictions against the episode's rows `steps`.

    Images: mean squared error of pixels in [0, 1]. Categorical fields: share of cell channels predicted wrong.
    Vectors: mean squared error. `reward`: absolute error. `terminal`: |P(end) - is_terminal|.
    """
    out: dict[str, np.ndarray] = {}
    for name, field in spec.observations.items():
        if name not in decoded or name not in episode:
            continue
        truth, pred = episode[name][steps], decoded[name]
        if field.kind == "image":
            diff = truth.astype(np.float32) / 255.0 - pred.astype(np.float32) / 255.0
            out[name] = np.square(diff).reshape(len(steps), -1).mean(1)
        elif field.kind == "categorical":
            out[name] = (truth != pred).reshape(len(steps), -1).mean(1).astype(np.float32)
        else:
            diff = truth.astype(np.float32) - pred.astype(np.float32)
            out[name] = np.square(diff).reshape(len(steps), -1).mean(1)
    if "reward" in decoded:
        out["reward"] = np.abs(episode["reward"][steps] - decoded["reward"]).astype(np.float32)
    if "cont" in decoded:
        out["terminal"] = np.abs(episode["is_terminal"][steps].astype(np.float32) - (1.0 - decoded["cont"]))
    return out
