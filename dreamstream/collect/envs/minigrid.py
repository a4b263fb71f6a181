"""MiniGrid (every env of the minigrid package, BabyAI included) as categorical grid observations.

Fields:
- `grid`: the agent's view (view x view x 3, 7x7x3 by default), each cell (object, colour, state) as
  minigrid encodes it. The class counts come from minigrid's own OBJECT_TO_IDX, COLOR_TO_IDX and
  STATE_TO_IDX; a value outside them is an error, never silently mapped to "unseen". The cell the agent
  stands on shows what it carries (minigrid's convention).
- `direction` (optional, default on): the facing direction, 4 classes.
- `map` (optional): the full grid, width x height x 3, with the agent drawn in as minigrid's
  FullyObsWrapper draws it (object "agent", colour red, state = direction, so the state channel has
  max(3, 4) = 4 classes). Sized from the env, so non-square grids (Unlock: 11x6) keep their shape.

The mission string is not stored (the format holds arrays only); envs whose mission varies between
episodes (BabyAI, Fetch, GoTo*) are therefore partially observed as far as a dataset is concerned.
Each env keeps its own `max_steps` unless `time_limit` is set; reaching it is a truncation, reaching
the goal (or lava, or a collision in Dynamic-Obstacles) is a termination.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from dreamstream.collect.config import EnvConfig
from dreamstream.datasets.spec import ActionSpec, EpisodeSpec, FieldSpec
from dreamstream.errors import UserError

N_DIRECTIONS = 4


def register() -> None:
    import minigrid  # noqa: F401  (registers MiniGrid-* and BabyAI-* ids)


def vocabulary() -> tuple[int, int, int]:
    """Class counts of (object, colour, state) from minigrid's own tables."""
    from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX, STATE_TO_IDX

    return (
        max(OBJECT_TO_IDX.values()) + 1,
        max(COLOR_TO_IDX.values()) + 1,
        max(STATE_TO_IDX.values()) + 1,
    )


class MiniGridEnv(gymnasium.Env):
    """Categorical `grid` (+ `direction`, + `map`) observations; Discrete actions from the env."""

    metadata = {"render_modes": []}

    def __init__(self, config: EnvConfig):
        register()
        from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX

        kwargs = dict(config.make_kwargs)
        if config.time_limit is not None:
            kwargs["max_steps"] = int(config.time_limit)
        try:
            self._env = gymnasium.make(config.id, disable_env_checker=True, **kwargs)
        except (gymnasium.error.Error, TypeError, ValueError) as exc:
            raise UserError(f"cannot make MiniGrid env {config.id!r}: {exc}") from exc
        self._inner = self._env.unwrapped
        if not hasattr(self._inner, "grid") or not hasattr(self._inner, "agent_view_size"):
            raise UserError(f"{config.id!r} is not a MiniGrid env (no grid / agent_view_size)")
        self.config = config
        objects, colours, states = vocabulary()
        self._agent_cell = np.array([OBJECT_TO_IDX["agent"], COLOR_TO_IDX["red"], 0], np.uint8)
        view_space = self._env.observation_space["image"]
        view = tuple(int(x) for x in view_space.shape)
        self.width, self.height = int(self._inner.width), int(self._inner.height)
        self._grid_limit = np.array([objects, colours, states], np.uint8)
        self._map_limit = np.array([objects, colours, max(states, N_DIRECTIONS)], np.uint8)
        observations = {"grid": FieldSpec(view, "uint8", "categorical", (objects, colours, states))}
        obs_spaces: dict[str, spaces.Space] = {
            "grid": spaces.MultiDiscrete(np.broadcast_to(self._grid_limit, view).copy(), dtype=np.uint8)
        }
        if config.direction:
            observations["direction"] = FieldSpec((1,), "uint8", "categorical", (N_DIRECTIONS,))
            obs_spaces["direction"] = spaces.MultiDiscrete(np.array([N_DIRECTIONS]), dtype=np.uint8)
        if config.map:
            shape = (self.width, self.height, 3)
            observations["map"] = FieldSpec(shape, "uint8", "categorical", tuple(int(x) for x in self._map_limit))
            obs_spaces["map"] = spaces.MultiDiscrete(np.broadcast_to(self._map_limit, shape).copy(), dtype=np.uint8)
        self.observation_space = spaces.Dict(obs_spaces)
        self.action_space = self._env.action_space
        self.episode_spec = EpisodeSpec(observations=observations, action=ActionSpec.from_space(self.action_space))

    @property
    def max_steps(self) -> int:
        return int(self._inner.max_steps)

    def _observation(self, raw: dict[str, Any]) -> dict[str, np.ndarray]:
        grid = np.asarray(raw["image"], dtype=np.uint8)
        if (grid >= self._grid_limit).any():
            bad = grid[(grid >= self._grid_limit).any(axis=-1)][0]
            raise RuntimeError(f"{self.config.id}: view cell {bad.tolist()} outside minigrid's vocabulary")
        obs = {"grid": grid}
        if self.config.direction:
            obs["direction"] = np.array([raw["direction"]], np.uint8)
        if self.config.map:
            full = self._inner.grid.encode()
            if full.shape[:2] != (self.width, self.height):
                raise RuntimeError(f"{self.config.id}: grid changed size to {full.shape[:2]}")
            x, y = self._inner.agent_pos
            full[x, y] = self._agent_cell
            full[x, y, 2] = self._inner.agent_dir
            obs["map"] = full
        return obs

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        try:
            raw, info = self._env.reset(seed=seed)
        except FileNotFoundError as exc:  # minigrid 3.2.0's wheel lacks the WFC pattern images
            raise UserError(f"{self.config.id}: minigrid cannot build this env here: {exc}") from exc
        return self._observation(raw), info

    def step(self, action):
        raw, reward, terminated, truncated, info = self._env.step(int(action))
        terminated = bool(terminated)
        return self._observation(raw), float(reward), terminated, bool(truncated) and not terminated, info

    def close(self) -> None:
        self._env.close()
