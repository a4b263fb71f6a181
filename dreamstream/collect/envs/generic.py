"""Any other gymnasium id: vector observations, Discrete or Box actions, optional rendered images.

Fields: `vector` (float32, the observation flattened; a Discrete observation becomes the categorical
field `state` instead) and, with `render_image`, `image` (size x size x 3 uint8 from `render()` in
rgb_array mode, resized with cv2 INTER_AREA). The registered TimeLimit (or `time_limit`) truncates.
"""

from __future__ import annotations

from typing import Any

import cv2
import gymnasium
import numpy as np
from gymnasium import spaces

from dreamstream.collect.config import EnvConfig
from dreamstream.datasets.spec import ActionSpec, EpisodeSpec, FieldSpec
from dreamstream.errors import UserError


class GymEnv(gymnasium.Env):
    """`vector` (and/or `state`, `image`) observations over a registered gymnasium env."""

    metadata = {"render_modes": []}

    def __init__(self, config: EnvConfig):
        kwargs = dict(config.make_kwargs)
        if config.render_image:
            kwargs["render_mode"] = "rgb_array"
        if config.time_limit is not None:
            kwargs["max_episode_steps"] = int(config.time_limit)
        try:
            self._env = gymnasium.make(config.id, **kwargs)
        except (gymnasium.error.Error, TypeError, ValueError) as exc:
            raise UserError(f"cannot make gymnasium env {config.id!r}: {exc}") from exc
        except ImportError as exc:
            raise UserError(f"gymnasium env {config.id!r} needs a package that is not installed: {exc}") from exc
        self.config = config
        self.size = int(config.image_size)
        space = self._env.observation_space
        observations: dict[str, FieldSpec] = {}
        obs_spaces: dict[str, spaces.Space] = {}
        self._state = isinstance(space, spaces.Discrete)
        if config.vector:
            if self._state:
                observations["state"] = FieldSpec((1,), "int64", "categorical", (int(space.n),))
                obs_spaces["state"] = spaces.MultiDiscrete(np.array([int(space.n)]))
            elif isinstance(space, spaces.Box):
                size = int(np.prod(space.shape)) if space.shape else 1
                observations["vector"] = FieldSpec((size,), "float32", "vector")
                obs_spaces["vector"] = spaces.Box(-np.inf, np.inf, (size,), np.float32)
            else:
                raise UserError(
                    f"{config.id}: observation space {space} is not supported "
                    "(Box or Discrete; set env.vector=false and env.render_image=true to store frames only)"
                )
        if config.render_image:
            observations["image"] = FieldSpec((self.size, self.size, 3), "uint8", "image")
            obs_spaces["image"] = spaces.Box(0, 255, (self.size, self.size, 3), np.uint8)
        if not observations:
            raise UserError(f"{config.id}: no observation fields (env.vector and env.render_image are both off)")
        self.observation_space = spaces.Dict(obs_spaces)
        self.action_space = self._env.action_space
        try:
            action = ActionSpec.from_space(self.action_space)
        except UserError as exc:
            raise UserError(f"{config.id}: {exc}") from exc
        self.episode_spec = EpisodeSpec(observations=observations, action=action)

    def _observation(self, raw: Any) -> dict[str, np.ndarray]:
        obs: dict[str, np.ndarray] = {}
        if self.config.vector:
            if self._state:
                obs["state"] = np.array([int(raw)], np.int64)
            else:
                obs["vector"] = np.asarray(raw, np.float32).reshape(-1)
        if self.config.render_image:
            frame = np.asarray(self._env.render(), np.uint8)
            if frame.ndim != 3 or frame.shape[-1] not in (3, 4):
                raise RuntimeError(f"{self.config.id}: render() gave shape {frame.shape}, not an RGB frame")
            obs["image"] = cv2.resize(frame[..., :3], (self.size, self.size), interpolation=cv2.INTER_AREA)
        return obs

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        raw, info = self._env.reset(seed=seed)
        if seed is not None:
            self.action_space.seed(seed)
        return self._observation(raw), info

    def step(self, action):
        if isinstance(self.action_space, spaces.Discrete):
            action = int(action)
        else:
            action = np.asarray(action, self.action_space.dtype).reshape(self.action_space.shape)
        raw, reward, terminated, truncated, info = self._env.step(action)
        terminated = bool(terminated)
        return self._observation(raw), float(reward), terminated, bool(truncated) and not terminated, info

    def close(self) -> None:
        self._env.close()
