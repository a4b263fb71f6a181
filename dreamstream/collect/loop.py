"""The env loop every worker runs (and `dreamstream bench collect`, in-process): envs -> policy -> rows.

Rows follow the dataset's convention (docs/format.md): row t holds observation t, the action that led
to it (zeros on an episode's first row) and the reward received on arriving at it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

STOP_CHECK_ROWS = 64  # how often (in rows) the loop reports rows and asks whether to stop


def zero_action(env) -> np.ndarray:
    """The action recorded on an episode's first row: zeros of the env's action space."""
    space = env.action_space
    if hasattr(space, "n"):
        return np.zeros((), np.int64)
    return np.zeros(space.shape, np.float32)


def make_row(obs: dict[str, np.ndarray], action, reward: float, first: bool, last: bool, terminal: bool) -> dict:
    """One dataset row: the observation's fields, the action that led to it, its reward and flags."""
    row = dict(obs)
    row["action"] = action
    row["reward"] = np.float32(reward)
    row["is_first"] = np.bool_(first)
    row["is_last"] = np.bool_(last)
    row["is_terminal"] = np.bool_(terminal)
    return row


def collect_loop(
    envs: list,
    policy,
    add_step: Callable[..., None],
    seeds: list[int | None],
    max_steps: int | None = None,
    max_episodes: int | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_episode: Callable[[float, int, bool, str, int], None] | None = None,
    on_rows: Callable[[int], None] | None = None,
    throttle: Callable[[int], None] | None = None,
) -> tuple[int, int]:
    """Step `envs` with `policy`, handing every row to `add_step(row, slot, policy, version)`.

    Returns (rows, episodes). Stops at `max_steps` rows, `max_episodes` finished episodes, or when
    `should_stop()` (checked every STOP_CHECK_ROWS rows) says so; the caller's writer seals what is open.
    `on_episode(return, length, terminal, policy, version)` is called for each finished episode and
    `on_rows(rows)` at each check. `throttle(rows)`, called at the same checks, may block to hold
    collection back (online training).
    """
    n = len(envs)
    uses_obs = getattr(policy, "uses_observations", True)
    zeros = [zero_action(env) for env in envs]
    returns = [0.0] * n
    lengths = [0] * n
    rows_total = episodes = 0
    next_check = STOP_CHECK_ROWS
    policy.reset(n)
    current = []
    for i, env in enumerate(envs):
        obs, _ = env.reset(seed=seeds[i])
        current.append(make_row(obs, zeros[i], 0.0, True, False, False))
    while True:
        name, version = policy.name, policy.version
        stop = False
        for i in range(n):
            row = current[i]
            add_step(row, i, name, version)
            rows_total += 1
            lengths[i] += 1
            returns[i] += float(row["reward"])
            if row["is_last"]:
                episodes += 1
                if on_episode is not None:
                    on_episode(returns[i], lengths[i], bool(row["is_terminal"]), name, version)
                returns[i], lengths[i] = 0.0, 0
                if max_episodes is not None and episodes >= max_episodes:
                    stop = True
                    break
                obs, _ = envs[i].reset()
                current[i] = row = make_row(obs, zeros[i], 0.0, True, False, False)
                add_step(row, i, name, version)
                rows_total += 1
                lengths[i] += 1
            if max_steps is not None and rows_total >= max_steps:
                stop = True
                break
        if rows_total >= next_check:
            next_check = rows_total + STOP_CHECK_ROWS
            if on_rows is not None:
                on_rows(rows_total)
            stop = stop or should_stop()
            if throttle is not None and not stop:
                throttle(rows_total)
        if stop:
            if on_rows is not None:
                on_rows(rows_total)
            return rows_total, episodes
        if uses_obs:
            batch = {key: np.stack([r[key] for r in current]) for key in current[0]}
        else:
            batch = {"is_first": np.array([bool(r["is_first"]) for r in current])}
        actions = policy.act(batch)
        for i in range(n):
            obs, reward, terminated, truncated, _ = envs[i].step(actions[i])
            current[i] = make_row(obs, actions[i], reward, False, terminated or truncated, terminated)
