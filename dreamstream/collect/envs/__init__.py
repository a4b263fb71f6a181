"""Environment adapters: each turns a gymnasium id into an env whose observations are a dict of arrays
and whose `episode_spec` is what the dataset card records.

    env = make_env(EnvConfig(id="ALE/Pong-v5"))
    obs, info = env.reset(seed=0)          # {"image": (64, 64, 3) uint8}
    obs, reward, terminated, truncated, info = env.step(action)

`terminated` and `truncated` are never both true: reaching the goal wins over a time-out on the same step.
"""

from __future__ import annotations

import difflib
from dataclasses import replace

import gymnasium

from dreamstream.collect.config import EnvConfig
from dreamstream.datasets.spec import EpisodeSpec
from dreamstream.errors import UserError

KINDS = ("atari", "minigrid", "gym")


def register_all() -> None:
    """Make every id dreamstream knows about visible in gymnasium's registry."""
    from dreamstream.collect.envs import atari, minigrid

    atari.register()
    minigrid.register()


def detect_kind(env_id: str) -> str:
    """`atari`, `minigrid` or `gym` for a registered id; UserError (with the nearest ids) otherwise."""
    if env_id.startswith("ALE/"):
        return "atari"
    if env_id.startswith(("MiniGrid-", "BabyAI-")):
        return "minigrid"
    register_all()
    if env_id not in gymnasium.registry:
        close = difflib.get_close_matches(env_id, list(gymnasium.registry), n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise UserError(f"unknown env {env_id!r}: not a preset in configs/ and not a registered gymnasium id{hint}")
    entry = str(gymnasium.registry[env_id].entry_point)
    if entry.startswith("ale_py"):
        return "atari"
    if entry.startswith("minigrid"):
        return "minigrid"
    return "gym"


def resolve(config: EnvConfig) -> EnvConfig:
    """The config with `kind` decided (from the id when it is `auto`)."""
    kind = detect_kind(config.id) if config.kind == "auto" else config.kind
    return replace(config, kind=kind)


def resolve_named(config: EnvConfig, env_arg: str, preset: str) -> EnvConfig:
    """`resolve` for a command's `--env` argument: an unknown id also suggests the closest preset name."""
    try:
        return resolve(config)
    except UserError as exc:
        if preset:
            raise
        from dreamstream.config import CONFIG_DIR

        known = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
        close = difflib.get_close_matches(env_arg, known, n=1, cutoff=0.6)
        hint = f"; did you mean the preset {close[0]!r}?" if close else f"; presets: {', '.join(known)}"
        raise UserError(f"{exc}{hint}") from None


def make_env(config: EnvConfig) -> gymnasium.Env:
    """Build the adapter for `config` (its `episode_spec` attribute is the dataset spec)."""
    config = resolve(config)
    if config.kind == "atari":
        from dreamstream.collect.envs.atari import AtariEnv

        return AtariEnv(config)
    if config.kind == "minigrid":
        from dreamstream.collect.envs.minigrid import MiniGridEnv

        return MiniGridEnv(config)
    register_all()
    from dreamstream.collect.envs.generic import GymEnv

    return GymEnv(config)


def episode_spec(config: EnvConfig) -> EpisodeSpec:
    """The dataset spec of an env config (builds the env once, then closes it)."""
    env = make_env(config)
    try:
        return env.episode_spec
    finally:
        env.close()
