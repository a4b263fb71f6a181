"""On data from `dreamstream collect` (real MiniGrid DoorKey, scripted expert and random policies): stats
equal a computation from the reader, and the example recipe configs/corpora/minigrid_doorkey_mixed.yaml
builds a corpus that validates and reads."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

from dreamstream.datasets import Dataset
from dreamstream.datasets.episodes import EpisodeIndex
from dreamstream.pipelines.corpus import build, prepare
from dreamstream.pipelines.recipe import parse_recipe
from dreamstream.pipelines.stats import compute_stats
from dreamstream.pipelines.validate import validate_dataset

REPO = Path(__file__).resolve().parents[2]
DREAMSTREAM = str(Path(sys.executable).parent / "dreamstream")


@pytest.fixture(scope="module")
def collected(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("collected")
    urls = {}
    for policy, episodes in (("expert", 12), ("random", 3)):
        urls[policy] = str(root / policy)
        subprocess.run([DREAMSTREAM, "collect", "--env", "minigrid_doorkey", "--out", urls[policy], "--policy",
                        policy, "--episodes", str(episodes), "--seed", "5", "--no-progress"],
                       check=True, capture_output=True, timeout=240)
    return urls


def test_stats_of_collected_data_equal_the_reader(collected, cluster):
    for url in collected.values():
        dataset = Dataset(url)
        episodes: dict[str, list] = {}
        actions = Counter()
        for chunk in dataset.chunks():  # the reader, not the pipeline: an independent computation
            episodes.setdefault(chunk.row.episode, []).append(chunk)
            moves = ~chunk.arrays["is_first"]
            actions.update(chunk.arrays["action"][moves].tolist())
        complete = [c for c in episodes.values() if any(x.row.is_last for x in c)]
        returns = [sum(float(x.arrays["reward"].sum(dtype=np.float64)) for x in c) for c in complete]
        summary = compute_stats(url, cluster, deep=True).summary
        assert summary["episodes"]["complete"] == len(complete) > 0
        assert summary["steps"] == sum(len(x.arrays["reward"]) for c in episodes.values() for x in c)
        assert summary["return"]["mean"] == pytest.approx(np.mean(returns))
        n = dataset.spec.action.n
        assert summary["actions"]["counts"] == [actions.get(a, 0) for a in range(n)]
        assert set(summary["observations"]) == set(dataset.spec.observations)
        assert summary["by_policy"].keys() == {f"{Path(url).name}@0"}


def test_example_recipe_on_collected_data(collected, tmp_path, cluster):
    data = yaml.safe_load((REPO / "configs/corpora/minigrid_doorkey_mixed.yaml").read_text())
    for source in data["sources"]:
        source["url"] = collected[source["name"]]
    data["output"].update(url=str(tmp_path / "corpus"), shard_mib=0.05)
    summary = build(prepare(parse_recipe(data, "minigrid_doorkey_mixed.yaml")), cluster)
    steps = {label: sum(split["by_label"].get(label, {}).get("steps", 0) for split in summary["splits"].values())
             for label in ("expert", "random")}
    total = sum(steps.values())
    longest = max(e.steps for u in collected.values() for e in EpisodeIndex(Dataset(u).records()))
    assert abs(steps["expert"] / total - 0.5) <= longest / total  # whole episodes: within one episode
    for url in (str(tmp_path / "corpus"), str(tmp_path / "corpus/validation")):
        assert validate_dataset(url, cluster)["ok"]
    dataset = Dataset(str(tmp_path / "corpus"))
    assert dataset.card.env_id == "MiniGrid-DoorKey-6x6-v0"
    assert sum(c.row.steps for c in dataset.chunks()) == dataset.card.lineage["expected"]["steps"]
