"""Atari through ale-py with DreamerV2/PyDreamer preprocessing.

Per agent step: `frame_skip` emulator frames with the same action (ALE applies sticky actions per
frame), the last two frames max-pooled (removes sprite flicker), resized to `image_size` with cv2
INTER_AREA. Reset plays 1..noop_max no-op frames. The episode is truncated after `time_limit` agent
steps (27,000 = 108,000 frames by default), never marked terminal for it; rewards are stored raw.

The ALE is driven directly (`ale.act`) rather than through gymnasium's wrappers: the frames we do not
keep are never copied out of the emulator, which is what makes the adapter as fast as a bare loop.
"""

from __future__ import annotations

from typing import Any

import cv2
import gymnasium
import numpy as np
from gymnasium import spaces

from dreamstream.collect.config import EnvConfig
from dreamstream.datasets.spec import EpisodeSpec, spec_from_spaces
from dreamstream.errors import UserError

DEFAULT_TIME_LIMIT = 27_000


def register() -> None:
    """Make the `ALE/...` ids known to gymnasium (idempotent)."""
    import ale_py

    gymnasium.register_envs(ale_py)


class AtariEnv(gymnasium.Env):
    """`image` (size, size, 3|1) uint8 observations, Discrete actions (18 with the full action space)."""

    metadata = {"render_modes": []}

    def __init__(self, config: EnvConfig):
        import ale_py
        from ale_py.env import AtariEnv as AleEnv

        register()
        try:
            registered = gymnasium.spec(config.id)
        except gymnasium.error.Error as exc:
            raise UserError(f"unknown Atari env {config.id!r}: {exc}") from exc
        game = registered.kwargs.get("game")
        if not game:
            raise UserError(f"{config.id!r} is not an ale-py Atari env (its registration names no game)")
        if config.frame_skip < 1:
            raise UserError(f"env.frame_skip must be >= 1, got {config.frame_skip}")
        self.config = config
        self.frame_skip = int(config.frame_skip)
        self.size = int(config.image_size)
        self.grayscale = bool(config.grayscale)
        self.noop_max = int(config.noop_max)
        self.time_limit = int(config.time_limit or DEFAULT_TIME_LIMIT)
        # frameskip=1 and no frame cap: both are ours to apply. ALE applies sticky actions per frame.
        self._ale_env = AleEnv(
            game=game,
            mode=registered.kwargs.get("mode"),
            difficulty=registered.kwargs.get("difficulty"),
            obs_type="grayscale" if self.grayscale else "rgb",
            frameskip=1,
            repeat_action_probability=float(config.sticky_actions),
            full_action_space=bool(config.full_action_space),
        )
        self.ale: ale_py.ALEInterface = self._ale_env.ale
        self._actions = list(self._ale_env._action_set)
        self._noop = ale_py.Action.NOOP
        height, width = self.ale.getScreenDims()
        raw_shape = (height, width) if self.grayscale else (height, width, 3)
        self._frames = [np.zeros(raw_shape, np.uint8), np.zeros(raw_shape, np.uint8)]
        channels = 1 if self.grayscale else 3
        self.observation_space = spaces.Dict(
            {"image": spaces.Box(0, 255, (self.size, self.size, channels), np.uint8)}
        )
        self.action_space = spaces.Discrete(len(self._actions))
        self.episode_spec: EpisodeSpec = spec_from_spaces(self.observation_space, self.action_space)
        self._steps = 0

    def _grab(self, index: int) -> None:
        if self.grayscale:
            self.ale.getScreenGrayscale(self._frames[index])
        else:
            self.ale.getScreenRGB(self._frames[index])

    def _observation(self) -> dict[str, np.ndarray]:
        pooled = np.maximum(self._frames[0], self._frames[1])
        image = cv2.resize(pooled, (self.size, self.size), interpolation=cv2.INTER_AREA)
        if self.grayscale:
            image = image[:, :, None]
        return {"image": image}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._ale_env.reset(seed=seed)  # seeds the emulator (sticky actions) on a seeded reset
        if self.noop_max > 0:
            for _ in range(int(self.np_random.integers(1, self.noop_max + 1))):
                self.ale.act(self._noop)
                if self.ale.game_over():
                    self.ale.reset_game()
        self._grab(0)
        self._frames[1][...] = self._frames[0]  # both pool buffers hold the real first frame
        self._steps = 0
        return self._observation(), {"lives": self.ale.lives()}

    def step(self, action):
        ale_action = self._actions[int(action)]
        reward = 0.0
        last = self.frame_skip - 1
        pooled_second = False
        for t in range(self.frame_skip):
            reward += self.ale.act(ale_action)
            if self.ale.game_over():
                break
            if t == last - 1:
                self._grab(1)
                pooled_second = True
        self._grab(0)
        if not pooled_second:
            self._frames[1][...] = self._frames[0]
        self._steps += 1
        terminated = bool(self.ale.game_over(with_truncation=False))
        truncated = not terminated and (self._steps >= self.time_limit or bool(self.ale.game_truncated()))
        return self._observation(), float(reward), terminated, truncated, {"lives": self.ale.lives()}

    def close(self) -> None:
        self._ale_env.close()
