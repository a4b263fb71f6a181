"""A policy loaded from a published snapshot, reloaded when a newer version appears.

Layout under the snapshot URL (any fsspec URL; written by dreamstream.train):

    <url>/latest.json      {"version": N, "path": "<file relative to url>"}   (rewritten last)
    <url>/<path>           torch.save of a payload dict, read with torch.load(weights_only=True):
                           {"format": "dreamstream.policy", "version": N, "spec": EpisodeSpec.to_json(),
                            "factory": "module:function", ...weights and settings of the actor...}

The factory is imported with importlib (only from the allowed module prefixes, `dreamstream.` by
default) and called as `factory(payload)`; it returns an actor with `.reset(n_envs)` and
`.act(obs_batch, greedy=False) -> np.ndarray`. A snapshot whose spec differs from the env's is refused
with an error naming both. The pointer is re-read every `poll_seconds` from inside `act`.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import time
from typing import Any

import fsspec
import numpy as np

from dreamstream.collect.policies import RandomPolicy
from dreamstream.datasets.spec import EpisodeSpec
from dreamstream.errors import UserError

log = logging.getLogger(__name__)

FORMAT = "dreamstream.policy"
POINTER = "latest.json"


class SnapshotReadError(UserError):
    """A snapshot file that could not be read (yet): retried at the next poll, never refused."""


def _same_spec(theirs: Any, mine: dict[str, Any]) -> bool:
    try:
        return isinstance(theirs, dict) and EpisodeSpec.from_json(theirs).to_json() == mine
    except (KeyError, TypeError, ValueError):
        return False


def describe_spec(spec: dict[str, Any]) -> str:
    """A one-line summary of a spec's JSON: `grid (7, 7, 3) uint8 categorical, ...; action discrete(7)`."""
    fields = ", ".join(
        f"{name} {tuple(f['shape'])} {f['dtype']} {f['kind']}" for name, f in spec.get("observations", {}).items()
    )
    action = spec.get("action", {})
    if action.get("kind") == "discrete":
        act = f"discrete({action.get('n')})"
    else:
        act = f"{action.get('kind')}{tuple(action.get('shape', ()))}"
    return f"{fields}; action {act}"


class SnapshotPolicy:
    """Policy interface over the latest snapshot at `url`."""

    def __init__(
        self,
        url: str,
        spec: EpisodeSpec,
        poll_seconds: float = 10.0,
        allowed_factories: list[str] | tuple[str, ...] = ("dreamstream.",),
        wait: bool = False,
        greedy: bool = False,
        storage_options: dict | None = None,
        seed: int | None = None,
    ):
        self.url = url.rstrip("/")
        self.spec = spec
        self.poll_seconds = float(poll_seconds)
        self.greedy = greedy
        self.allowed_factories = tuple(allowed_factories)
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url, **(storage_options or {}))
        except (ValueError, ImportError) as exc:
            raise UserError(f"policy URL {url!r}: {exc}") from exc
        self.name = "random"
        self.version = 0
        self.actor: Any = None
        self._fallback = RandomPolicy(spec.action, seed=seed)
        self._n_envs = 1
        self._last_poll = time.monotonic()
        self._refused: set[int] = set()
        pointer = self._read_pointer()
        if pointer is None:
            if not wait:
                raise UserError(f"no policy snapshot at {self.url}/{POINTER}")
            log.info("no snapshot at %s/%s yet: acting randomly until one appears", self.url, POINTER)
        else:
            self._load(pointer)

    # loading ---------------------------------------------------------------------------------------

    def _read_pointer(self) -> dict[str, Any] | None:
        path = f"{self.root}/{POINTER}"
        try:
            raw = self.fs.cat_file(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise UserError(f"cannot read {self.url}/{POINTER}: {exc}") from exc
        try:
            pointer = json.loads(raw)
            return {"version": int(pointer["version"]), "path": str(pointer["path"])}
        except (ValueError, KeyError, TypeError) as exc:
            raise UserError(f"{self.url}/{POINTER}: expected {{'version': N, 'path': ...}}: {exc}") from exc

    def _load(self, pointer: dict[str, Any]) -> None:
        import torch

        where = f"{self.url}/{pointer['path']}"
        try:
            raw = self.fs.cat_file(f"{self.root}/{pointer['path']}")
        except OSError as exc:  # FileNotFoundError included: the pointer may be ahead of an object store
            raise SnapshotReadError(f"cannot read policy snapshot {where}: {exc}") from exc
        try:
            payload = torch.load(io.BytesIO(raw), weights_only=True, map_location="cpu")
        except Exception as exc:  # torch raises UnpicklingError/RuntimeError for disallowed or bad files
            raise UserError(f"{where} is not a loadable snapshot (weights_only): {exc}") from exc
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise UserError(f"{where}: not a dreamstream policy snapshot (format must be {FORMAT!r})")
        mine = self.spec.to_json()
        theirs = payload.get("spec")
        if not _same_spec(theirs, mine):
            raise UserError(
                f"policy snapshot {where} does not match the env: snapshot spec [{describe_spec(theirs or {})}] "
                f"vs env spec [{describe_spec(mine)}]"
            )
        factory = self._factory(str(payload.get("factory", "")), where)
        actor = factory(payload)
        actor.reset(self._n_envs)
        self.actor = actor
        self.version = int(payload.get("version", pointer["version"]))
        self.name = str(payload.get("name", "snapshot"))
        log.info("loaded policy snapshot %s (version %d)", where, self.version)

    def _factory(self, name: str, where: str):
        module_name, _, function = name.partition(":")
        if not module_name or not function:
            raise UserError(f"{where}: factory {name!r} must look like 'module:function'")
        if not module_name.startswith(self.allowed_factories):
            raise UserError(
                f"{where}: factory {name!r} is outside the allowed modules {list(self.allowed_factories)} "
                "(collect.snapshot_factories)"
            )
        try:
            return getattr(importlib.import_module(module_name), function)
        except (ImportError, AttributeError) as exc:
            raise UserError(f"{where}: cannot import factory {name!r}: {exc}") from exc

    def poll(self) -> bool:
        """Re-read the pointer now; load a newer version. True when a new version was loaded."""
        self._last_poll = time.monotonic()
        try:
            pointer = self._read_pointer()
        except UserError as exc:
            log.warning("%s", exc)
            return False
        if pointer is None or pointer["version"] in self._refused:
            return False
        if self.actor is not None and pointer["version"] <= self.version:
            return False
        try:
            self._load(pointer)
        except SnapshotReadError as exc:
            log.warning("%s (retrying at the next poll)", exc)
            return False
        except UserError as exc:
            self._refused.add(pointer["version"])
            if self.actor is None:
                raise  # the first snapshot is unusable: the run is misconfigured
            log.error("keeping policy version %d: %s", self.version, exc)
            return False
        return True

    # policy interface ------------------------------------------------------------------------------

    def reset(self, n_envs: int) -> None:
        self._n_envs = int(n_envs)
        self._fallback.reset(n_envs)
        if self.actor is not None:
            self.actor.reset(n_envs)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        interval = self.poll_seconds if self.actor is not None else min(self.poll_seconds, 1.0)
        if time.monotonic() - self._last_poll >= interval:
            self.poll()
        if self.actor is None:
            return self._fallback.act(obs)
        actions = np.asarray(self.actor.act(obs, greedy=self.greedy))
        if self.spec.action.kind == "discrete":
            return actions.astype(np.int64).reshape(-1)
        return actions.astype(np.float32).reshape(-1, *self.spec.action.shape)
