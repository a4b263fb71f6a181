"""A tiny world model trained once per session on the square world, saved as a trainer run folder.

    <tmp>/data                    the square world's episodes (a real dataset: card, shards, commit records)
    <tmp>/run/run.json            settings (model config, train.data) as the trainer writes them
    <tmp>/run/checkpoints/        checkpoint-<step>.pt + latest.json ({"learner": ..., "step": ...})
    <tmp>/run/snapshots/          policy-<step>.pt + latest.json (export_policy)
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from inspection_helpers import (
    CONFIG,
    EPISODE_STEPS,
    EPISODES,
    TRAIN_STEPS,
    Trained,
    square_episode,
    square_spec,
    window_batch,
    write_dataset,
)

from dreamstream.train.loop.learner import Learner
from dreamstream.train.model.agent import Agent
from dreamstream.train.model.config import OptimConfig
from dreamstream.train.model.policy_snapshot import export_policy
from dreamstream.train.runtime import seed_everything
from dreamstream.versioned.files import VersionedFiles


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """TRAIN_STEPS Learner steps on random windows of the square world (about 20 s on one CPU core)."""
    root = tmp_path_factory.mktemp("inspection")
    rng = np.random.default_rng(0)
    episodes = [square_episode(rng, EPISODE_STEPS) for _ in range(EPISODES)]
    data = write_dataset(root / "data", episodes)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a busy 2-core machine two threads were 40x slower for this tiny model
    try:
        seed_everything(0)
        agent = Agent(square_spec(), CONFIG)
        learner = Learner(agent, OptimConfig(lr_model=3e-3, weight_decay=0.0), "cpu")
        for _ in range(TRAIN_STEPS):
            learner.train_step(window_batch(episodes, rng))
    finally:
        torch.set_num_threads(threads)
    run = root / "run"
    VersionedFiles(str(run / "checkpoints"), "checkpoint").save({"learner": learner.state_dict(), "step": learner.step},
                                                                learner.step)
    VersionedFiles(str(run / "snapshots"), "policy").save(export_policy(agent, learner.step), learner.step)
    settings = {"model": dataclasses.asdict(CONFIG), "train": {"data": data}}
    (run / "run.json").write_text(json.dumps({"preset": "", "settings": settings}))
    return Trained(data, run, agent.eval(), episodes, learner.step)
