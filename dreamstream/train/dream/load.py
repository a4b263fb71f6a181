"""load_model: a checkpoint or a policy snapshot, from any location that dreamstream.versioned can resolve.

A checkpoint holds the whole agent (it decodes); a snapshot only the encoder, RSSM and actor. Every file
is untrusted and loads with torch.load(weights_only=True) (dreamstream.versioned).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import torch

from dreamstream.config import ConfigError, from_dict
from dreamstream.datasets.reader import Dataset
from dreamstream.datasets.spec import EpisodeSpec
from dreamstream.errors import UserError
from dreamstream.train.dream.model import CHECKPOINT, SNAPSHOT, DreamModel
from dreamstream.train.model.agent import Agent
from dreamstream.train.model.config import ModelConfig
from dreamstream.train.model.policy_snapshot import load_acting_weights, model_of
from dreamstream.train.run_folder import RUN_FILE
from dreamstream.versioned.formats import check_snapshot, is_checkpoint, is_snapshot
from dreamstream.versioned.locate import SNAPSHOTS, Located, latest_file, locate

log = logging.getLogger(__name__)


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
        settings = json.loads(fs.cat_file(f"{run}/{RUN_FILE}"))["settings"]
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
