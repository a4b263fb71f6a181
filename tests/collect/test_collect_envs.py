"""The environment adapters on the real ale-py, minigrid and gymnasium envs."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

from dreamstream.collect.config import EnvConfig
from dreamstream.collect.envs import detect_kind, make_env, register_all
from dreamstream.errors import UserError

# -- Atari --------------------------------------------------------------------------------------------


def paddle_row(image: np.ndarray) -> float:
    """Mean row of Pong's green (agent) paddle in the right part of a 64x64 frame."""
    mask = np.abs(image[:, 50:64].astype(int) - [92, 186, 92]).sum(-1) < 60
    rows = np.nonzero(mask.any(axis=1))[0]
    assert len(rows), "the agent's paddle is not in the frame"
    return float(rows.mean())


def test_atari_frames_are_64x64_uint8_and_the_first_is_not_black():
    env = make_env(EnvConfig(id="ALE/Pong-v5"))
    assert env.episode_spec.observations["image"].shape == (64, 64, 3)
    assert env.episode_spec.action.n == 18  # full action space
    obs, _ = env.reset(seed=0)
    assert obs["image"].shape == (64, 64, 3) and obs["image"].dtype == np.uint8
    assert obs["image"].mean() > 20, "the first frame is black (max-pool buffer bug)"
    obs, reward, terminated, truncated, _ = env.step(0)
    assert obs["image"].shape == (64, 64, 3) and not terminated and not truncated
    env.close()


def test_pong_paddle_moves():
    env = make_env(EnvConfig(id="ALE/Pong-v5"))
    meanings = env.unwrapped._ale_env.get_action_meanings()
    right, left = meanings.index("RIGHT"), meanings.index("LEFT")  # in Pong, RIGHT moves up and LEFT down
    rows = {}
    for action in (right, left):
        env.reset(seed=3)
        for _ in range(15):
            obs = env.step(action)[0]
        rows[action] = paddle_row(obs["image"])
    assert rows[left] - rows[right] > 5, rows
    env.close()


def test_atari_grayscale_and_time_limit_is_a_truncation():
    env = make_env(EnvConfig(id="ALE/Breakout-v5", grayscale=True, time_limit=5))
    obs, _ = env.reset(seed=0)
    assert obs["image"].shape == (64, 64, 1)
    flags = [env.step(1)[2:4] for _ in range(5)]
    assert flags == [(False, False)] * 4 + [(False, True)]
    env.close()


# -- MiniGrid -----------------------------------------------------------------------------------------


def minigrid_ids() -> list[str]:
    register_all()
    return sorted(k for k, s in gymnasium.registry.items() if str(s.entry_point).startswith("minigrid"))


def test_every_minigrid_env_fits_its_spec_and_the_vocabulary():
    """Every env of the minigrid package: shapes from the env, values inside minigrid's vocabulary."""
    unbuildable = []
    rng = np.random.default_rng(0)
    for env_id in minigrid_ids():
        env = make_env(EnvConfig(id=env_id, map=True))
        spec = env.episode_spec
        try:
            obs, _ = env.reset(seed=0)
        except UserError as exc:  # minigrid 3.2.0's wheel lacks the WFC pattern images
            assert "WFC" in env_id and "minigrid cannot build" in str(exc)
            unbuildable.append(env_id)
            continue
        assert spec.action.n == env.action_space.n
        assert spec.observations["map"].shape == (env.width, env.height, 3), env_id
        for _ in range(5):
            for name, field in spec.observations.items():
                assert obs[name].shape == field.shape and obs[name].dtype == np.dtype(field.dtype), (env_id, name)
                assert (obs[name].reshape(-1, len(field.classes)) < np.array(field.classes)).all(), (env_id, name)
            obs, _, terminated, truncated, _ = env.step(int(rng.integers(spec.action.n)))
            assert not (terminated and truncated)
            if terminated or truncated:
                obs, _ = env.reset()
        env.close()
    assert len(minigrid_ids()) - len(unbuildable) > 80
    assert all("WFC" in name for name in unbuildable)


@pytest.mark.parametrize(
    ("env_id", "size", "actions"),
    [
        ("MiniGrid-Dynamic-Obstacles-5x5-v0", (5, 5), 3),
        ("MiniGrid-MultiRoom-N2-S4-v0", (25, 25), 7),
        ("MiniGrid-Unlock-v0", (11, 6), 7),
        ("MiniGrid-RedBlueDoors-6x6-v0", (12, 6), 7),
    ],
)
def test_named_minigrid_envs(env_id, size, actions):
    env = make_env(EnvConfig(id=env_id, map=True))
    spec = env.episode_spec
    assert spec.observations["grid"].shape == (7, 7, 3)
    assert spec.observations["grid"].classes == (11, 6, 3)
    assert spec.observations["map"].shape == (*size, 3)
    assert spec.observations["map"].classes == (11, 6, 4)
    assert spec.action.n == actions
    obs, _ = env.reset(seed=1)
    agent = np.argwhere(obs["map"][:, :, 0] == 10)
    assert len(agent) == 1 and obs["map"][tuple(agent[0])][2] == obs["direction"][0]


def test_minigrid_time_out_is_truncation_and_keeps_the_env_limit():
    env = make_env(EnvConfig(id="MiniGrid-Empty-8x8-v0"))
    assert env.max_steps == 256  # the env's own limit
    env = make_env(EnvConfig(id="MiniGrid-Empty-8x8-v0", time_limit=4))
    env.reset(seed=0)
    flags = [env.step(0)[2:4] for _ in range(4)]  # turning left never reaches the goal
    assert flags == [(False, False)] * 3 + [(False, True)]


# -- other gymnasium ids ------------------------------------------------------------------------------


def test_cartpole_vector_and_discrete():
    env = make_env(EnvConfig(id="CartPole-v1"))
    spec = env.episode_spec
    assert spec.observations["vector"].shape == (4,) and spec.observations["vector"].kind == "vector"
    assert spec.action.kind == "discrete" and spec.action.n == 2
    obs, _ = env.reset(seed=0)
    assert obs["vector"].dtype == np.float32


def test_pendulum_continuous_with_rendered_images():
    env = make_env(EnvConfig(id="Pendulum-v1", render_image=True, image_size=32))
    spec = env.episode_spec
    assert spec.action.kind == "continuous" and spec.action.shape == (1,)
    assert spec.observations["image"].shape == (32, 32, 3)
    obs, _ = env.reset(seed=0)
    obs, _, _, _, _ = env.step(np.array([0.5], np.float32))
    assert obs["image"].shape == (32, 32, 3) and obs["image"].dtype == np.uint8 and obs["image"].std() > 0
    assert obs["vector"].shape == (3,)


def test_kind_from_the_id_and_unknown_ids():
    assert detect_kind("ALE/Pong-v5") == "atari"
    assert detect_kind("MiniGrid-Empty-5x5-v0") == "minigrid"
    assert detect_kind("BabyAI-GoToRedBall-v0") == "minigrid"
    assert detect_kind("CartPole-v1") == "gym"
    with pytest.raises(UserError, match="unknown env 'CartPole-v7'.*CartPole-v1"):
        detect_kind("CartPole-v7")
