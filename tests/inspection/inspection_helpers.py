"""Helpers of the inspection tests: a tiny learnable world and a tiny model trained on it.

The square world: a white square on a 4x4 grid of 16x16x3 frames (the CNN's smallest side), moved by
actions 0-4 = stay, left, right, up, down; with probability `slip` it moves at random instead, so open-loop
predictions under the recorded actions drift from the truth as the horizon grows. Reward 1 on the
bottom-right cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dreamstream.datasets import DatasetCard, EpisodeWriter, WriterConfig
from dreamstream.datasets.spec import ActionSpec, EpisodeSpec, FieldSpec
from dreamstream.train.model.agent import Agent
from dreamstream.train.model.config import ModelConfig

SIDE, CELLS = 16, 4
MOVES = np.array([(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)])


def square_spec() -> EpisodeSpec:
    return EpisodeSpec(observations={"image": FieldSpec((SIDE, SIDE, 3), "uint8", "image")},
                       action=ActionSpec(kind="discrete", n=len(MOVES)))


def frame(x: int, y: int) -> np.ndarray:
    image = np.full((SIDE, SIDE, 3), 30, np.uint8)
    size = SIDE // CELLS
    image[y * size : (y + 1) * size, x * size : (x + 1) * size] = (250, 250, 250)
    return image


def square_episode(rng: np.random.Generator, steps: int = 30, slip: float = 0.3) -> dict[str, np.ndarray]:
    x, y = rng.integers(0, CELLS, 2)
    images, actions, rewards = [], [], []
    for t in range(steps):
        action = 0 if t == 0 else int(rng.integers(0, len(MOVES)))
        if t > 0:
            move = MOVES[action] if rng.random() > slip else MOVES[rng.integers(0, len(MOVES))]
            x, y = np.clip((x, y) + move, 0, CELLS - 1)
        images.append(frame(x, y))
        actions.append(action)
        rewards.append(1.0 if t > 0 and (x, y) == (CELLS - 1, CELLS - 1) else 0.0)
    is_last = np.zeros(steps, bool)
    is_last[-1] = True
    return {"image": np.stack(images), "action": np.array(actions, np.int64), "reward": np.array(rewards, np.float32),
            "is_first": ~np.arange(steps).astype(bool), "is_last": is_last, "is_terminal": np.zeros(steps, bool)}


CONFIG = ModelConfig(deter=64, stoch=8, classes=8, hidden=64, cnn_depth=8, dense_hidden=64, dense_embed=32,
                     encoder_layers=1, decoder_layers=1, head_layers=1, ac_hidden=32, ac_layers=1, imag_horizon=3,
                     kl_weight=1.0, map_probe=False)
TRAIN_STEPS, SEQ, ROWS = 250, 10, 8
EPISODES, EPISODE_STEPS = 24, 30


@dataclass(frozen=True)
class Trained:
    data: str  # dataset URL
    run: Path  # run folder
    agent: Agent  # the trained agent (CPU)
    episodes: list[dict[str, np.ndarray]]  # what was written, in order
    step: int


def write_dataset(root: Path, episodes: list[dict[str, np.ndarray]], spec=None) -> str:
    card = DatasetCard.create(spec or square_spec(), env_id="Square-v0", description="inspection tests")
    with EpisodeWriter(str(root), card, WriterConfig(chunk_steps=16)) as writer:
        for episode in episodes:
            writer.add_episode(episode)
    return str(root)


def window_batch(episodes: list[dict[str, np.ndarray]], rng: np.random.Generator) -> dict[str, torch.Tensor]:
    picks = []
    for _ in range(ROWS):
        episode = episodes[rng.integers(len(episodes))]
        start = int(rng.integers(0, EPISODE_STEPS - SEQ + 1))
        picks.append({k: v[start : start + SEQ] for k, v in episode.items()})
    batch = {k: torch.from_numpy(np.stack([p[k] for p in picks], 1)) for k in picks[0]}
    batch["reset"] = torch.zeros(SEQ, ROWS, dtype=torch.bool)
    batch["reset"][0] = True
    return batch
