"""The scripted MiniGrid expert solves Empty, DoorKey and FourRooms in every tested seed."""

from __future__ import annotations

import numpy as np
import pytest

from dreamstream.collect.config import EnvConfig
from dreamstream.collect.envs import make_env
from dreamstream.collect.expert import MiniGridExpert
from dreamstream.errors import UserError

SEEDS = range(20)


@pytest.mark.parametrize(
    "env_id",
    ["MiniGrid-Empty-5x5-v0", "MiniGrid-Empty-Random-6x6-v0", "MiniGrid-DoorKey-5x5-v0", "MiniGrid-DoorKey-6x6-v0",
     "MiniGrid-DoorKey-8x8-v0", "MiniGrid-FourRooms-v0", "MiniGrid-MultiRoom-N2-S4-v0", "MiniGrid-Unlock-v0"],
)
def test_expert_solves_every_seed(env_id):
    env = make_env(EnvConfig(id=env_id, map=True))
    expert = MiniGridExpert(env.episode_spec, seed=0)
    for seed in SEEDS:
        obs, _ = env.reset(seed=seed)
        expert.reset(1)
        steps = 0
        while True:
            action = expert.act({name: value[None] for name, value in obs.items()})
            assert action.shape == (1,) and action.dtype == np.int64
            obs, reward, terminated, truncated, _ = env.step(action[0])
            steps += 1
            if terminated or truncated:
                break
        assert terminated and reward > 0, f"{env_id} seed {seed}: not solved in {steps} steps"
        assert steps < env.max_steps / 2


def test_expert_needs_the_map():
    env = make_env(EnvConfig(id="MiniGrid-Empty-5x5-v0", map=False))
    with pytest.raises(UserError, match="map"):
        MiniGridExpert(env.episode_spec)
