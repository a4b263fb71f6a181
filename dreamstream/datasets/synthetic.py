"""Synthetic episodes that obey a spec: for tests and benchmarks of the data path (not for learning)."""

from __future__ import annotations

import numpy as np

from dreamstream.datasets.spec import EpisodeSpec, FieldSpec


def _random_field(spec: FieldSpec, steps: int, rng: np.random.Generator) -> np.ndarray:
    shape = (steps, *spec.shape)
    if spec.kind == "categorical":
        assert spec.classes is not None
        return np.stack([rng.integers(0, n, shape[:-1]) for n in spec.classes], axis=-1).astype(spec.dtype)
    if spec.kind == "image":
        # Smooth-ish frames (a moving gradient plus noise) compress like real game frames, not like noise.
        base = (np.arange(spec.shape[0])[:, None, None] + np.arange(steps)[:, None, None, None]) % 256
        noise = rng.integers(0, 8, shape)
        return (np.broadcast_to(base, shape) + noise).clip(0, 255).astype(np.uint8)
    if np.issubdtype(np.dtype(spec.dtype), np.integer):
        return rng.integers(0, 10, shape).astype(spec.dtype)
    return rng.standard_normal(shape).astype(spec.dtype)


def random_episode(
    spec: EpisodeSpec, steps: int, rng: np.random.Generator, terminal: bool = True
) -> dict[str, np.ndarray]:
    """One episode of `steps` rows: random observations/actions/rewards, correct flags.

    `terminal=False` ends it as a truncation (is_last without is_terminal).
    """
    arrays = {name: _random_field(field, steps, rng) for name, field in spec.observations.items()}
    if spec.action.kind == "discrete":
        action = rng.integers(0, spec.action.n, steps).astype(np.int64)
    else:
        action = rng.uniform(-1, 1, (steps, *spec.action.shape)).astype(np.float32)
    action[0] = 0  # no action led to the first observation
    reward = rng.integers(-1, 2, steps).astype(np.float32)
    reward[0] = 0
    is_first = np.zeros(steps, bool)
    is_first[0] = True
    is_last = np.zeros(steps, bool)
    is_last[-1] = True
    is_terminal = is_last & terminal
    arrays.update(action=action, reward=reward, is_first=is_first, is_last=is_last, is_terminal=is_terminal)
    return arrays
