"""Policies behind one small interface, so a collector never knows which kind it runs.

    policy.reset(n_envs)                  # before the first act, and whenever the batch is rebuilt
    actions = policy.act(obs_batch)       # obs_batch: the current rows of all envs, batched
    policy.name, policy.version           # recorded with every chunk the collector writes

`obs_batch` holds every observation field of the spec as an [n_envs, ...] array plus the row fields
`is_first`, `is_last`, `is_terminal` ([n_envs] bool) and `reward` ([n_envs] float32), so a recurrent
policy can reset its state where an episode starts. `act` returns [n_envs] int64 indices for discrete
action spaces and [n_envs, *shape] float32 for continuous ones. `name`/`version` may change between calls
(a snapshot policy reloads newer versions); the collector reads them at every step.

The kinds live in their own modules (random_policy, expert, snapshot); `make_policy` chooses one from
`collect.policy`, and none of them imports this module.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from dreamstream.collect.config import CollectConfig, resolve_policy
from dreamstream.collect.random_policy import RandomPolicy
from dreamstream.datasets.spec import EpisodeSpec


@runtime_checkable
class Policy(Protocol):
    name: str
    version: int

    def reset(self, n_envs: int) -> None: ...

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray: ...


def make_policy(
    policy: str,
    spec: EpisodeSpec,
    config: CollectConfig | None = None,
    seed: int | None = None,
    storage_options: dict | None = None,
) -> Policy:
    """`random`, `expert` (names), or else the location of a run's snapshots -> a Policy for envs of `spec`."""
    config = config or CollectConfig()
    if policy == "random":
        return RandomPolicy(spec.action, seed=seed)
    if policy == "expert":
        from dreamstream.collect.expert import MiniGridExpert

        return MiniGridExpert(spec, seed=seed)
    from dreamstream.collect.snapshot import SnapshotPolicy  # torch and the acting model: only when used

    return SnapshotPolicy(
        resolve_policy(policy),
        spec,
        poll_seconds=config.poll_seconds,
        wait=config.wait_for_snapshot,
        greedy=config.greedy,
        storage_options=storage_options,
        seed=seed,
    )
