"""The uniformly random policy: the default of a collector, and a snapshot policy's stand-in until a first
usable snapshot appears (dreamstream.collect.snapshot)."""

from __future__ import annotations

import numpy as np

from dreamstream.datasets.spec import ActionSpec


class RandomPolicy:
    """Uniform over discrete actions; uniform within finite Box bounds (standard normal where unbounded)."""

    name = "random"
    version = 0
    uses_observations = False  # the collector may skip batching observations for it

    def __init__(self, action: ActionSpec, seed: int | None = None):
        self.action = action
        self.rng = np.random.default_rng(seed)
        self.n_envs = 1
        if action.kind == "continuous":
            self._low = np.asarray(action.low, np.float64).reshape(action.shape)
            self._high = np.asarray(action.high, np.float64).reshape(action.shape)
            self._bounded = np.isfinite(self._low) & np.isfinite(self._high)

    def reset(self, n_envs: int) -> None:
        self.n_envs = int(n_envs)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        n = len(obs["is_first"]) if "is_first" in obs else self.n_envs
        if self.action.kind == "discrete":
            return self.rng.integers(0, self.action.n, size=n, dtype=np.int64)
        shape = (n, *self.action.shape)
        low = np.where(self._bounded, self._low, 0.0)
        high = np.where(self._bounded, self._high, 1.0)
        uniform = self.rng.uniform(low, high, shape)
        normal = self.rng.standard_normal(shape)
        return np.where(self._bounded, uniform, normal).astype(np.float32)
