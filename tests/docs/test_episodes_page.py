"""Every Python example of docs/episodes.md runs, in order, against a small dataset written where the page
says (`data/doorkey`, relative to the working directory)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from gymnasium import spaces

from dreamstream.datasets import DatasetCard, EpisodeWriter, WriterConfig, spec_from_spaces
from dreamstream.datasets.stats_file import write_stats
from dreamstream.datasets.storage import open_fs
from dreamstream.datasets.synthetic import random_episode
from dreamstream.pipelines.cluster import ClusterConfig, open_runner
from dreamstream.pipelines.stats import compute_stats

PAGE = Path(__file__).resolve().parents[2] / "docs" / "episodes.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks() -> list[tuple[int, str]]:
    text = PAGE.read_text()
    return [(text[: m.start()].count("\n") + 2, m.group(1)) for m in BLOCK.finditer(text)]


def write_doorkey(url: str) -> None:
    """MiniGrid-like episodes: random (version 0) and expert (version 1), terminated and truncated, one
    long enough for several chunks, and one still growing."""
    spec = spec_from_spaces(spaces.Dict(image=spaces.Box(0, 255, (7, 7, 3), np.uint8)), spaces.Discrete(7))
    card = DatasetCard.create(spec, env_id="MiniGrid-DoorKey-5x5-v0", preset="minigrid_doorkey")
    rng = np.random.default_rng(0)
    with EpisodeWriter(url, card, WriterConfig(chunk_steps=20, shard_max_bytes=8_000)) as writer:
        for i in range(10):
            episode = random_episode(spec, int(rng.integers(5, 60)), rng, terminal=i % 3 != 0)
            episode["reward"][:] = 0
            episode["reward"][-1] = 0.9 if episode["is_terminal"][-1] else 0.0
            writer.add_episode(episode, policy="random" if i < 7 else "expert", policy_version=i // 7)
        growing = random_episode(spec, 30, rng)
        for t in range(25):
            writer.add_step({k: v[t] for k, v in growing.items()}, policy="random")
    with open_runner(ClusterConfig(workers=0, progress=False)) as runner:
        summary = compute_stats(url, runner).summary
    fs, root = open_fs(url)
    write_stats(fs, root, summary, url)


def test_every_python_example_runs(tmp_path, monkeypatch, capsys):
    blocks = python_blocks()
    assert len(blocks) >= 6, "the page's ```python blocks were not found"
    monkeypatch.chdir(tmp_path)
    write_doorkey("data/doorkey")
    namespace: dict = {"__name__": "__docs__"}
    for line, code in blocks:
        exec(compile(code, f"{PAGE}:{line}", "exec"), namespace)  # one script: later blocks use earlier names
    out = capsys.readouterr().out
    assert "complete episodes" in out and "None" in out  # the stats block and the score of a card without scores
    assert "truncated" in out and "terminated" in out
    assert namespace["some"].ids and len(namespace["chosen"]) > 0 and namespace["best"].ids
