"""One episode's rows between the Dreamer convention and Minari's.

dreamstream row t holds observation t, the action that led to it (zeros on row 0), the reward received on
arriving at it, and is_first / is_last / is_terminal. A Minari episode of N steps holds N + 1 observations
and N actions, rewards, terminations and truncations, entry i being the step from observation i to i + 1.
So for an episode of T = N + 1 rows:

    observations[t]   = field[t]            t = 0..N
    actions[i]        = action[i + 1]       i = 0..N-1 (row 0's zero action has no Minari entry)
    rewards[i]        = reward[i + 1]       (row 0's reward, always 0, has none either)
    terminations[i]   = is_terminal[i + 1]  (true on the last step at most)
    truncations[i]    = is_last[i + 1] and not is_terminal[i + 1]
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from minari.data_collector import EpisodeBuffer

from dreamstream.datasets.errors import DatasetError
from dreamstream.datasets.minari.spaces import is_discrete_state
from dreamstream.datasets.spec import EpisodeSpec


def to_buffer(arrays: dict[str, np.ndarray], spec: EpisodeSpec, observation: spaces.Dict,
              episode_id: int) -> EpisodeBuffer:
    """A complete dreamstream episode (at least one step) as a Minari episode buffer, each observation field
    in the dtype of its space (`observation`, from spaces.observation_space)."""
    last = len(arrays["reward"]) - 1
    terminal = bool(arrays["is_terminal"][-1])
    ends = np.zeros(last, bool)
    ends[-1] = True
    observations = {name: (arrays[name][:, 0] if is_discrete_state(field) else arrays[name])
                    .astype(observation[name].dtype, copy=False) for name, field in spec.observations.items()}
    return EpisodeBuffer(id=episode_id, observations=observations, actions=arrays["action"][1:],
                         rewards=arrays["reward"][1:], terminations=ends & terminal, truncations=ends & ~terminal)


def from_episode(episode: Any, spec: EpisodeSpec, steps: int, where: str,
                 drop: frozenset[str] = frozenset()) -> dict[str, np.ndarray]:
    """A Minari episode (minari.EpisodeData) of `steps` declared steps as dreamstream rows, every array
    checked against the spec; DatasetError naming `where` (dataset and episode) and the field otherwise.
    Observation keys in `drop` are left out; a non-Dict observation is the spec's one field."""
    rows = steps + 1
    if isinstance(episode.observations, dict):
        raw_obs = {name: value for name, value in episode.observations.items() if name not in drop}
    else:
        raw_obs = {name: episode.observations for name in spec.observations}
    if set(raw_obs) != set(spec.observations):
        raise DatasetError(f"{where}: observation keys {sorted(raw_obs)}, the space declares "
                           f"{sorted(spec.observations)}")
    out: dict[str, np.ndarray] = {}
    for name, field in spec.observations.items():
        value = np.asarray(raw_obs[name])
        if is_discrete_state(field) and value.shape == (rows,):
            value = value[:, None]
        _check(value, (rows, *field.shape), where, name)
        if field.kind == "categorical":
            _check_classes(value, np.asarray(field.classes), where, name)
        out[name] = value.astype(field.dtype, copy=False)
    action_field = spec.fields["action"]
    actions = np.asarray(episode.actions)
    _check(actions, (steps, *action_field.shape), where, "actions")
    if spec.action.kind == "discrete":
        _check_classes(actions, np.asarray([spec.action.n]), where, "actions")
    rewards, terminations, truncations = (np.asarray(getattr(episode, key)) for key in
                                          ("rewards", "terminations", "truncations"))
    for key, value in (("rewards", rewards), ("terminations", terminations), ("truncations", truncations)):
        _check(value, (steps,), where, key)
    if (terminations[:-1].astype(bool) | truncations[:-1].astype(bool)).any():
        raise DatasetError(f"{where}: a termination or truncation before the episode's last step")
    out["action"] = np.concatenate([np.zeros((1, *action_field.shape), action_field.dtype),
                                    actions.astype(action_field.dtype, copy=False)])
    out["reward"] = np.concatenate([np.zeros(1, np.float32), rewards.astype(np.float32)])
    out["is_first"] = np.arange(rows) == 0
    out["is_last"] = np.arange(rows) == steps
    out["is_terminal"] = out["is_last"] & bool(steps and terminations[-1])
    return out


def _check(value: np.ndarray, shape: tuple[int, ...], where: str, name: str) -> None:
    if value.shape != shape or value.dtype.kind not in "biuf":
        raise DatasetError(f"{where}: {name} is {value.dtype}{list(value.shape)}, the dataset declares "
                           f"{list(shape)} numbers", field=name)


def _check_classes(value: np.ndarray, classes: np.ndarray, where: str, name: str) -> None:
    if value.size and ((value < 0).any() or (value >= classes).any()):
        raise DatasetError(f"{where}: {name} holds a value outside its {classes.tolist()} classes", field=name)
