"""Typed settings of the collectors: which environment (`env:`) and how to collect from it (`collect:`).

Both are plain dataclasses with defaults; YAML presets in configs/ and `--set env.key=value` override
them (see dreamstream.config). This module imports nothing heavy, so commands' settings can nest it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from dreamstream.datasets.storage import resolve_location
from dreamstream.tracking import resolve_tracking_uri

EnvKind = Literal["auto", "atari", "minigrid", "gym"]


@dataclass
class EnvConfig:
    """One environment and its preprocessing. Defaults follow DreamerV2/PyDreamer where they apply."""

    id: str = "MiniGrid-Empty-5x5-v0"
    """A registered gymnasium id (`ALE/Pong-v5`, `MiniGrid-DoorKey-6x6-v0`, `CartPole-v1`, ...)."""

    kind: EnvKind = "auto"
    """Which adapter: `atari` (ale-py), `minigrid`, `gym` (any other id); `auto` decides from the id."""

    time_limit: int | None = None
    """Agent-step limit, recorded as a truncation. None: the env's own (27,000 for Atari, MiniGrid's
    `max_steps`, the registered `max_episode_steps` of other ids)."""

    image_size: int = 64
    """Side of the square `image` field (Atari frames; rendered frames of other envs)."""

    grayscale: bool = False
    """Atari: store (size, size, 1) luminance frames instead of RGB."""

    frame_skip: int = 4
    """Atari: emulator frames per agent step; the last two are max-pooled."""

    sticky_actions: float = 0.25
    """Atari: probability that the emulator repeats the previous action on each frame."""

    full_action_space: bool = True
    """Atari: all 18 joystick actions instead of the game's minimal set."""

    noop_max: int = 30
    """Atari: reset with a random number (1..noop_max) of no-op frames; 0 turns it off."""

    direction: bool = True
    """MiniGrid: store the agent's facing direction as the categorical field `direction`."""

    map: bool = False
    """MiniGrid: also store the full grid with the agent drawn in, as the categorical field `map`
    (width x height x 3), a probe target. The scripted expert needs it (the collector turns it on)."""

    vector: bool = True
    """Other gymnasium ids: store the observation as the float32 field `vector`."""

    render_image: bool = False
    """Other gymnasium ids: also store `env.render()` (rgb_array) resized to `image_size` as `image`."""

    make_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for `gymnasium.make` (MiniGrid and other ids)."""


@dataclass
class CollectConfig:
    """How a collection run is shaped: workers, budget, policy, logging."""

    workers: int = 1
    """Worker processes (spawned, each with its own env(s), policy and shard writer)."""

    envs_per_worker: int = 1
    """Environments stepped in lockstep by each worker; the policy acts on them as one batch."""

    steps: int | None = None
    """Stop after this many rows (agent steps, reset rows included) over all workers. None: no limit."""

    episodes: int | None = None
    """Stop after this many finished episodes over all workers. None: no limit."""

    policy: str = "random"
    """`random`, `expert` (scripted MiniGrid), or a snapshot URL (any fsspec URL holding latest.json)."""

    seed: int = 0
    """Base seed; worker w, env e is seeded with seed + 1000 * w + e on its first reset."""

    poll_seconds: float = 10.0
    """Snapshot policies: how often to re-read `<url>/latest.json` for a newer version."""

    greedy: bool = False
    """Snapshot policies: take the most likely action instead of sampling one (evaluation)."""

    wait_for_snapshot: bool = False
    """Snapshot policies: until a first `latest.json` appears, act randomly (recorded as policy
    `random`, version 0). False: a missing snapshot is an error."""

    log_seconds: float = 10.0
    """Plain log lines (no terminal) and MLflow metric flushes happen at most this often."""

    mlflow_tracking_uri: str | None = None
    """Log episode return/length and steps/s to this MLflow tracking server/store. None: no MLflow,
    unless `mlflow_run_id` or `mlflow_experiment` is set (then MLflow's own default URI is used)."""

    mlflow_experiment: str | None = None
    """MLflow experiment for a new run (default `dreamstream-collect`)."""

    mlflow_run_id: str | None = None
    """Attach to this existing MLflow run instead of starting one."""

    def __post_init__(self) -> None:
        self.policy = resolve_policy(self.policy)
        self.mlflow_tracking_uri = self.mlflow_tracking_uri and resolve_tracking_uri(self.mlflow_tracking_uri)


POLICY_NAMES = ("random", "expert")
"""Policies chosen by name; any other `collect.policy` is the location of a run's snapshots."""


def resolve_policy(policy: str) -> str:
    """A policy name as is; anything else is a snapshot location, resolved like every location."""
    return policy if policy in POLICY_NAMES else resolve_location(policy)
