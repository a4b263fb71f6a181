"""A policy loaded from a published snapshot, reloaded when a newer version appears.

Layout under the snapshot URL (any fsspec URL; written by the trainer through dreamstream.versioned):

    <url>/latest.json      {"version": N, "path": "<file name in url>"}   (rewritten last)
    <url>/<path>           a policy snapshot (dreamstream.versioned.formats), read with torch.load(weights_only=True)

A snapshot names its policy class by a plain name, looked up in POLICY_CLASSES, a fixed table in this
module: file contents never choose code to import. The class's builder is called as `build(payload)` and
returns an actor with `.reset(n_envs)` and `.act(obs_batch, greedy=False) -> np.ndarray`.

Every file is untrusted. A new version replaces the current one only after it loaded, matched the env's
spec and acted once on a zero observation; a publication that fails any of these is skipped with a
warning (and not retried), and the current version keeps acting. At start (the collector's first check):
a snapshot made for another env is an error naming how the specs differ; any other unusable or missing
snapshot is an error too, unless `wait` (collect.wait_for_snapshot): then the policy acts randomly (policy
`random`, version 0) until a usable version appears. The pointer is re-read every `poll_seconds` from
inside `act`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import fsspec
import numpy as np

from dreamstream.collect.random_policy import RandomPolicy
from dreamstream.datasets.spec import EpisodeSpec, spec_difference
from dreamstream.errors import UserError
from dreamstream.train.model.policy_snapshot import build_actor
from dreamstream.versioned.files import load_torch
from dreamstream.versioned.formats import DREAMER_ACTOR, check_snapshot, read_spec
from dreamstream.versioned.pointer import POINTER, Pointer, read_pointer

log = logging.getLogger(__name__)


class Actor(Protocol):
    """What a policy class builds from a payload."""

    def reset(self, n_envs: int) -> None: ...

    def act(self, obs: dict[str, np.ndarray], greedy: bool = False) -> np.ndarray: ...


POLICY_CLASSES: dict[str, Callable[[dict[str, Any]], Actor]] = {DREAMER_ACTOR: build_actor}
"""Every policy class a snapshot may name: `policy_class` -> builder. Add a class here, in code. The
trainer's acting model is pure model code (dreamstream.train.model): collectors never import the trainer."""


class SnapshotReadError(UserError):
    """A snapshot file that could not be read (yet): retried at the next poll, never refused."""


class SnapshotMismatch(UserError):
    """A snapshot made for another env: a configuration error at start, a skipped publication later."""


@dataclass(frozen=True)
class _Version:
    actor: Actor
    version: int
    name: str


class SnapshotPolicy:
    """Policy interface over the latest usable snapshot at `url`."""

    def __init__(
        self,
        url: str,
        spec: EpisodeSpec,
        poll_seconds: float = 10.0,
        wait: bool = False,
        greedy: bool = False,
        storage_options: dict | None = None,
        seed: int | None = None,
    ):
        self.url = url.rstrip("/")
        self.spec = spec
        self.poll_seconds = float(poll_seconds)
        self.greedy = greedy
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url, **(storage_options or {}))
        except (ValueError, ImportError) as exc:
            raise UserError(f"policy URL {url!r}: {exc}") from exc
        self.name = "random"
        self.version = 0
        self.actor: Actor | None = None
        self._fallback = RandomPolicy(spec.action, seed=seed)
        self._n_envs = 1
        self._last_poll = time.monotonic()
        self._refused: set[int] = set()
        self._start(wait)

    def _start(self, wait: bool) -> None:
        """Load the current snapshot; without `wait` there must be a usable one."""
        try:
            loaded = self._update()
        except SnapshotMismatch:
            raise
        except UserError as exc:
            if not wait:
                raise
            log.warning("%s; acting randomly until a usable snapshot appears", exc)
            return
        if not loaded:
            if not wait:
                raise UserError(f"no policy snapshot at {self.url}/{POINTER} (a policy is 'random', 'expert' "
                                "or the location of a run's snapshots)")
            log.info("no snapshot at %s/%s yet: acting randomly until one appears", self.url, POINTER)

    # loading ---------------------------------------------------------------------------------------

    def poll(self) -> bool:
        """Re-read the pointer now and switch to a newer usable version (True when it did). Never raises:
        an unreadable pointer or file is retried at the next poll, an unusable snapshot is skipped."""
        self._last_poll = time.monotonic()
        try:
            return self._update()
        except SnapshotReadError as exc:
            log.warning("%s (retrying at the next poll)", exc)
        except UserError as exc:
            keeping = f"keeping policy version {self.version}" if self.actor is not None else "acting randomly"
            log.warning("skipped a policy snapshot: %s; %s", exc, keeping)
        return False

    def _update(self) -> bool:
        """Adopt the pointer's version when it is newer and not refused before; True when it was adopted.

        Raises SnapshotReadError (retry later: an unreadable file or pointer, or a damaged pointer, which has no
        version to refuse) or UserError (the version is refused for good)."""
        try:
            pointer = read_pointer(self.fs, self.root, self.url)
        except UserError as exc:
            raise SnapshotReadError(str(exc)) from exc
        if pointer is None or pointer.version in self._refused:
            return False
        if self.actor is not None and pointer.version <= self.version:
            return False
        try:
            loaded = self._load(pointer)
        except SnapshotReadError:
            raise
        except UserError:
            self._refused.add(pointer.version)
            raise
        loaded.actor.reset(self._n_envs)
        self.actor, self.version, self.name = loaded.actor, loaded.version, loaded.name
        log.info("loaded policy snapshot %s/%s (version %d)", self.url, pointer.path, self.version)
        return True

    def _load(self, pointer: Pointer) -> _Version:
        """Read, check, build and try out the snapshot that `pointer` names."""
        where = f"{self.url}/{pointer.path}"
        try:
            raw = self.fs.cat_file(f"{self.root}/{pointer.path}")
        except Exception as exc:  # noqa: BLE001 - any store failure, FileNotFoundError included (the pointer
            # may be ahead of an object store): retried at the next poll
            raise SnapshotReadError(f"cannot read policy snapshot {where}: {type(exc).__name__}: {exc}") from exc
        payload = self._payload(raw, pointer, where)
        chosen = payload.get("policy_class")
        build = POLICY_CLASSES.get(chosen) if isinstance(chosen, str) else None
        if build is None:
            raise UserError(f"{where}: unknown policy class {chosen!r:.80}; known classes: {sorted(POLICY_CLASSES)}")
        try:
            actor = build(payload)
            self._try_out(actor)
        except UserError as exc:
            raise UserError(f"{where}: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - any failure of an untrusted payload refuses it, never the run
            raise UserError(f"{where}: policy class {chosen!r} cannot act with it: {type(exc).__name__}: {exc}"
                            ) from exc
        return _Version(actor, pointer.version, payload["name"])

    def _payload(self, raw: bytes, pointer: Pointer, where: str) -> dict[str, Any]:
        """The file's payload, checked: its envelope, the env's spec and the pointer's version."""
        payload = load_torch(raw, where, "snapshot")
        try:
            check_snapshot(payload)
        except UserError as exc:
            raise UserError(f"{where}: {exc}") from exc
        try:
            difference = spec_difference(self.spec, read_spec(payload))
        except UserError as exc:
            difference = str(exc)
        if difference:
            raise SnapshotMismatch(f"policy snapshot {where} does not match the env; how the snapshot's spec "
                                   f"differs from the env's: {difference}")
        if payload["version"] != pointer.version:
            raise UserError(f"{where}: version {payload['version']} in the file, {pointer.version} in its pointer")
        return payload

    def _try_out(self, actor: Actor) -> None:
        """One greedy act on a zero observation of the spec: a version that cannot act never replaces one that can."""
        obs = {name: np.zeros((1, *field.shape), field.dtype) for name, field in self.spec.observations.items()}
        actor.reset(1)
        self._actions(actor.act({**obs, "is_first": np.ones(1, bool)}, greedy=True), 1)

    def _actions(self, raw: Any, n: int) -> np.ndarray:
        """An actor's output as the env's actions (int64 [n] or float32 [n, *shape]); UserError if it is not."""
        action = self.spec.action
        out = np.asarray(raw)
        if action.kind == "discrete":
            if out.size != n or not np.issubdtype(out.dtype, np.integer) or not ((0 <= out) & (out < action.n)).all():
                raise UserError(f"actions {out.dtype} {out.shape} are not {n} integers in [0, {action.n})")
            return out.astype(np.int64).reshape(n)
        if out.size != n * int(np.prod(action.shape)) or not np.isfinite(out).all():
            raise UserError(f"actions {out.dtype} {out.shape} are not {n} finite actions of shape {action.shape}")
        return out.astype(np.float32).reshape(n, *action.shape)

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
        return self._actions(self.actor.act(obs, greedy=self.greedy), self._n_envs)
