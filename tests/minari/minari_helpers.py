"""Helpers for the Minari tests: collecting with the real collector loop, running the CLI in-process, and
building Minari datasets with minari's own API from real gymnasium episodes."""

from __future__ import annotations

import contextlib
import dataclasses
import io

import gymnasium
import minari
import numpy as np
from minari.data_collector import EpisodeBuffer

from dreamstream.cli import main
from dreamstream.collect.config import EnvConfig
from dreamstream.collect.envs import make_env, resolve
from dreamstream.collect.loop import collect_loop
from dreamstream.collect.policies import make_policy
from dreamstream.datasets import DatasetCard, EpisodeWriter, WriterConfig


def collect(root: str, env_config: EnvConfig, steps: int, preset: str = "", **card: object) -> None:
    """The workers' loop in this process (real env, random policy, real writer), the card as the collector
    writes it (env config included)."""
    env_config = resolve(env_config)
    env = make_env(env_config)
    card = DatasetCard.create(env.episode_spec, env_id=env_config.id, preset=preset,
                              env_config=dataclasses.asdict(env_config), **card)
    with EpisodeWriter(root, card, WriterConfig(chunk_steps=50)) as writer:
        collect_loop([env], make_policy("random", env.episode_spec, seed=0),
                     lambda row, slot, name, version: writer.add_step(row, slot, name, version), [0],
                     max_steps=steps)
    env.close()


def cli(*args: str) -> tuple[int, str, str]:
    """`dreamstream ARGS` in this process -> (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def gym_episodes(env_id: str, episodes: int, seed: int = 0, **make_kwargs) -> list[EpisodeBuffer]:
    """Random-action episodes of a real gymnasium env as Minari episode buffers (N + 1 observations)."""
    env = gymnasium.make(env_id, **make_kwargs)
    env.action_space.seed(seed)
    buffers = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        observations, actions, rewards, terminations, truncations = [obs], [], [], [], []
        while not (terminations and (terminations[-1] or truncations[-1])):
            action = env.action_space.sample()
            obs, reward, terminated, truncated, _ = env.step(action)
            observations.append(obs)
            actions.append(action)
            rewards.append(reward)
            terminations.append(terminated)
            truncations.append(truncated)
        if isinstance(obs, dict):  # per key: arrays stacked, strings (a MiniGrid mission) as a list
            stacked = {k: [o[k] for o in observations] if isinstance(obs[k], str)
                       else np.stack([o[k] for o in observations]) for k in obs}
        else:
            stacked = np.stack(observations)
        buffers.append(EpisodeBuffer(id=episode, observations=stacked, actions=np.stack(actions),
                                     rewards=rewards, terminations=terminations, truncations=truncations))
    env.close()
    return buffers


def minari_dataset(dataset_id: str, buffers: list[EpisodeBuffer], **kwargs) -> minari.MinariDataset:
    """A Minari dataset made by minari's own create_dataset_from_buffers, in the current MINARI_DATASETS_PATH."""
    return minari.create_dataset_from_buffers(dataset_id, buffers, algorithm_name="random", author="tests",
                                              author_email="tests@example.org", code_permalink="https://example.org",
                                              description="a test dataset", **kwargs)
