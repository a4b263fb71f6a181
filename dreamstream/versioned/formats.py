"""The payloads of the two kinds of versioned files a run writes: policy snapshots and checkpoints.

A policy snapshot (format version 2) is what collectors act with (dreamstream.collect.snapshot) and what
`dreamstream dream` can encode and imagine with:

    {"format": "dreamstream.policy", "format_version": 2, "version": N (the trainer's step), "name": "dreamer",
     "policy_class": "dreamer_actor", "spec": EpisodeSpec.to_json(), "model_config": dict,
     "state_dict": encoder + RSSM + actor weights}

Collectors read the envelope (`format` .. `spec`); `policy_class` is a name in their fixed registry, never
code to import (version 1 named a `module:function` factory instead). `model_config` and `state_dict` are
read by the class that name stands for (dreamstream.train.model.policy_snapshot for `dreamer_actor`).

A checkpoint is what resumes a run and what `dreamstream dream` rebuilds the whole agent from:

    {"learner": the learner's state (agent weights, optimisers, step), "loader": the loader's position,
     "rng": RNG states, "step": N, "spec": EpisodeSpec.to_json(), "model_config": dict,
     "counters": run counters that only the checkpoint holds ({"wall_s": training seconds so far})}

(`spec`, `model_config` and `counters` may be absent: readers then take them from the run folder, or 0.)

Both are loaded with torch.load(weights_only=True) (dreamstream.versioned.files.load_torch) and are
untrusted: the checks here raise UserErrors that name no file; callers prefix where the payload came from.
"""

from __future__ import annotations

import re
from typing import Any

from dreamstream.datasets.spec import EpisodeSpec
from dreamstream.errors import UserError

FORMAT = "dreamstream.policy"
FORMAT_VERSION = 2
DREAMER_ACTOR = "dreamer_actor"
"""The policy class of the trainer's snapshots (the acting part of the DreamerV2 agent)."""

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
"""A snapshot's `name`, recorded with every episode it acts in."""


def snapshot_payload(version: int, name: str, policy_class: str, spec: EpisodeSpec, model_config: dict[str, Any],
                     state_dict: dict[str, Any]) -> dict[str, Any]:
    """A policy snapshot of this format version (what the trainer publishes)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "version": int(version),
        "name": name,
        "policy_class": policy_class,
        "spec": spec.to_json(),
        "model_config": model_config,
        "state_dict": state_dict,
    }


def is_snapshot(payload: Any) -> bool:
    """Whether `payload` claims to be a policy snapshot (check it with check_snapshot before use)."""
    return isinstance(payload, dict) and payload.get("format") == FORMAT


def check_snapshot(payload: Any) -> dict[str, Any]:
    """`payload` when its envelope is one this code reads: the format and its version, an integer version,
    a plain name. The spec (read_spec) and the policy class are the reader's to check."""
    if not is_snapshot(payload):
        raise UserError(f"not a dreamstream policy snapshot (format must be {FORMAT!r})")
    if payload.get("format_version") != FORMAT_VERSION:
        raise UserError(f"policy snapshot format_version {payload.get('format_version')!r:.40}; "
                        f"this code reads {FORMAT_VERSION}")
    version = payload.get("version")
    if type(version) is not int or version < 0:
        raise UserError(f"version must be a non-negative integer, got {version!r:.40}")
    if not isinstance(payload.get("name"), str) or not _NAME.fullmatch(payload["name"]):
        raise UserError("name must be 1-64 letters, digits, '_', '-' or '.'")
    return payload


def read_spec(payload: dict[str, Any]) -> EpisodeSpec:
    """The episode spec a snapshot or checkpoint was made for."""
    try:
        return EpisodeSpec.from_json(payload["spec"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"no spec this code can read: {exc!r}") from exc


def checkpoint_payload(step: int, learner: dict[str, Any], loader: dict[str, Any], rng: dict[str, Any],
                       spec: EpisodeSpec, model_config: dict[str, Any],
                       counters: dict[str, float] | None = None) -> dict[str, Any]:
    """A checkpoint (what the trainer saves)."""
    return {"learner": learner, "loader": loader, "rng": rng, "step": int(step), "spec": spec.to_json(),
            "model_config": model_config, "counters": dict(counters or {})}


def is_checkpoint(payload: Any) -> bool:
    """Whether `payload` is shaped like a checkpoint (a dict with the learner's state)."""
    return isinstance(payload, dict) and "learner" in payload
