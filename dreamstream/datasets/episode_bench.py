"""Episode iteration throughput (Dataset.episodes) against reading and decoding the same shards directly.

Writes a local dataset of 64x64x3 frames (zstd members, as collectors write them), then in the same run,
`--repeats` times each: the raw read of every committed shard's bytes; the loader's read of them (shard
bytes checked, split and every sample decoded: Dataset.iter_shard, the baseline); and iterating every
episode with its arrays joined (Dataset.episodes). Prints steps/s and MB/s (shard bytes per second) as
min/median/max over the runs and the ratio of episode iteration to the baseline. The dataset was just
written, so every read comes from the page cache.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dreamstream.datasets.card import DatasetCard
from dreamstream.datasets.reader import Dataset
from dreamstream.datasets.spec import spec_from_spaces
from dreamstream.datasets.synthetic import random_episode
from dreamstream.datasets.writer import EpisodeWriter, WriterConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--episodes", type=int, default=100, help="episodes to write and iterate")
    parser.add_argument("--steps", type=int, default=500, help="rows per episode")
    parser.add_argument("--chunk-steps", type=int, default=200, help="rows per sample (episodes span chunks)")
    parser.add_argument("--shard-mib", type=float, default=8.0, help="shard size in MiB")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each reading")
    parser.add_argument("--dir", help="where to write the dataset (default: a temporary folder, removed after)")


def make_dataset(url: str, episodes: int, steps: int, chunk_steps: int, shard_mib: float) -> None:
    from gymnasium import spaces

    spec = spec_from_spaces(spaces.Dict(image=spaces.Box(0, 255, (64, 64, 3), np.uint8),
                                        vector=spaces.Box(-1, 1, (8,), np.float32)), spaces.Discrete(18))
    card = DatasetCard.create(spec, env_id="Bench-v0", description="bench episodes")
    config = WriterConfig(chunk_steps=chunk_steps, shard_max_bytes=int(shard_mib * 2**20), shard_max_age_s=3600)
    rng = np.random.default_rng(0)
    with EpisodeWriter(url, card, config, writer_id="bench") as writer:
        for i in range(episodes):
            writer.add_episode(random_episode(spec, steps, rng, terminal=bool(i % 2)), policy="random",
                               policy_version=i % 3)


def raw_read(dataset: Dataset) -> int:
    """Every committed shard's bytes, read whole; -> steps they hold."""
    steps = 0
    for record in dataset.records():
        with dataset.fs.open(f"{dataset.root}/{record.shard_path}", "rb") as f:
            f.read()
        steps += record.steps
    return steps


def read_and_decode(dataset: Dataset) -> int:
    """The baseline: every shard read (size and sha256 checked), split, and each sample decoded."""
    return sum(chunk.row.steps for record in dataset.records() for chunk in dataset.iter_shard(record))


def iterate_episodes(dataset: Dataset) -> int:
    """Every episode, its arrays joined: what a user of the episode API gets."""
    return sum(len(episode.arrays["reward"]) for episode in dataset.episodes(outcome="any"))


def spread(values: list[float], digits: int = 1) -> dict[str, float]:
    return {"min": round(min(values), digits), "median": round(float(np.median(values)), digits),
            "max": round(max(values), digits)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="dreamstream-bench-episodes-"))
    url = str(folder / "dataset")
    try:
        make_dataset(url, args.episodes, args.steps, args.chunk_steps, args.shard_mib)
        dataset = Dataset(url)
        mb = sum(record.bytes for record in dataset.records()) / 1e6
        readings: dict[str, Callable[[Dataset], int]] = {
            "raw_read": raw_read, "read_decode": read_and_decode, "episodes": iterate_episodes}
        seconds: dict[str, list[float]] = {name: [] for name in readings}
        steps = 0
        for _ in range(args.repeats):  # interleaved, so that a busy moment of the machine hits each alike
            for name, reading in readings.items():
                started = time.perf_counter()
                steps = reading(dataset)
                seconds[name].append(time.perf_counter() - started)
        result: dict[str, Any] = {"bench": "episodes", "dataset_mb": round(mb, 1), "steps": steps,
                                  "episodes": args.episodes, "repeats": args.repeats}
        for name, times in seconds.items():
            result[f"{name}_steps_per_s"] = spread([steps / s for s in times])
            result[f"{name}_mb_s"] = spread([mb / s for s in times])
        ratios = [base / s for base, s in zip(seconds["read_decode"], seconds["episodes"], strict=True)]
        result["episodes_to_read_decode"] = spread(ratios, digits=3)
        print(f"bench episodes: {mb:.0f} MB, {steps} steps in {args.episodes} episodes, {args.repeats} runs "
              "(min/median/max)", flush=True)
        for name in readings:
            s, m = result[f"{name}_steps_per_s"], result[f"{name}_mb_s"]
            print(f"  {name:12s} {s['min']:>10.0f} / {s['median']:>10.0f} / {s['max']:>10.0f} steps/s   "
                  f"{m['min']:>8.1f} / {m['median']:>8.1f} / {m['max']:>8.1f} MB/s", flush=True)
        r = result["episodes_to_read_decode"]
        print(f"  episodes / read_decode: {r['min']} / {r['median']} / {r['max']}", flush=True)
        return result
    finally:
        if not args.dir:
            shutil.rmtree(folder, ignore_errors=True)
