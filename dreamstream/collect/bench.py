"""collect: collector steps/s (random policy, shards to local disk) divided by a bare env loop, same run.

Measured in one process, alternating, best of `--repeats` for each:
- bare: `policy.act` -> `env.step` -> `env.reset` on episode end, nothing else;
- collector: the loop every worker runs (`collect_loop`), rows to an EpisodeWriter on local disk,
  including the final commit.
Then the real multi-process Collector with 1 and 2 workers: steps/s of each worker's loop (start-up
excluded) and the 2-worker aggregate (all rows / the slower worker's loop time).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from dreamstream.arguments import add_set_argument

log = logging.getLogger("dreamstream.bench")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", default="minigrid_doorkey", help="preset or gymnasium id (default minigrid_doorkey)")
    parser.add_argument("--steps", type=int, help="steps per in-process measurement (default: 20000, Atari 5000)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating repeats; the best of each is kept")
    parser.add_argument("--worker-steps", type=int, help="steps per worker in the multi-process runs (default --steps)")
    parser.add_argument("--no-workers", action="store_true", help="skip the multi-process runs")
    add_set_argument(parser, "env.grayscale=true")
    parser.add_argument("--dir", help="local folder for the written datasets (default: a temporary folder)")


def bare_loop(env, policy, steps: int, seed: int) -> float:
    """Steps/s of the env and policy alone."""
    policy.reset(1)
    env.reset(seed=seed)
    first = np.zeros(1, bool)
    start = time.perf_counter()
    for _ in range(steps):
        action = policy.act({"is_first": first})[0]
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def collector_loop(env, policy, card, writer_config, root: str, steps: int, seed: int) -> float:
    """Steps/s of the worker loop writing to `root` (the writer's final commit included)."""
    from dreamstream.collect.loop import collect_loop
    from dreamstream.datasets.writer import EpisodeWriter

    with EpisodeWriter(root, card, config=writer_config) as writer:
        def add_step(row, slot, name, version):
            writer.add_step(row, slot=slot, policy=name, policy_version=version)

        start = time.perf_counter()
        collect_loop([env], policy, add_step, [seed], max_steps=steps)
        writer.commit()
        return steps / (time.perf_counter() - start)


def run(args: argparse.Namespace) -> dict:
    from dreamstream.collect.collector import Collector
    from dreamstream.collect.command import CollectSettings
    from dreamstream.collect.envs import make_env, resolve_named
    from dreamstream.collect.random_policy import RandomPolicy
    from dreamstream.datasets import DatasetCard
    from dreamstream.settings import load_settings

    settings, preset = load_settings(CollectSettings, args.env, overrides=args.overrides)
    env_config = resolve_named(settings.env, args.env, preset)
    steps = args.steps or (5000 if env_config.kind == "atari" else 20000)
    worker_steps = args.worker_steps or steps
    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="dreamstream-bench-collect-"))
    folder.mkdir(parents=True, exist_ok=True)
    env = make_env(env_config)
    card = DatasetCard.create(env.episode_spec, env_id=env_config.id, preset=preset, description="bench collect")
    policy = RandomPolicy(env.episode_spec.action, seed=0)
    bare: list[float] = []
    collected: list[float] = []
    try:
        bare_loop(env, policy, min(steps, 1000), seed=0)  # warm-up
        for repeat in range(args.repeats):
            bare.append(bare_loop(env, policy, steps, seed=repeat))
            collected.append(collector_loop(env, policy, card, settings.data, str(folder / f"inproc-{repeat}"),
                                            steps, seed=repeat))
            log.info("repeat %d: bare %.0f steps/s, collector %.0f steps/s", repeat, bare[-1], collected[-1])
        env.close()
        result = {
            "bench": "collect",
            "env": preset or env_config.id,
            "env_id": env_config.id,
            "steps": steps,
            "bare_steps_per_s": round(max(bare), 1),
            "collector_steps_per_s": round(max(collected), 1),
            "ratio": round(max(collected) / max(bare), 3),
        }
        print(f"bench collect {result['env']}: bare loop {max(bare):.0f} steps/s, collector {max(collected):.0f} "
              f"steps/s, ratio {result['ratio']:.3f} (best of {args.repeats}, {steps} steps each)", flush=True)
        if not args.no_workers:
            for workers in (1, 2):
                collect = settings.collect
                collect.workers, collect.steps, collect.episodes, collect.policy = (
                    workers, worker_steps * workers, None, "random")
                collector = Collector(env_config, str(folder / f"workers-{workers}"), collect, settings.data,
                                      preset=preset, description="bench collect")
                summary = collector.run(progress=False)
                if summary.failed:
                    raise RuntimeError(f"bench workers failed: {summary.failed}")
                rates = [s.steps / s.seconds for s in collector.workers.values() if s.seconds > 0]
                slowest = max(s.seconds for s in collector.workers.values())
                total = summary.steps / slowest
                result[f"workers{workers}_per_worker_steps_per_s"] = [round(r, 1) for r in rates]
                result[f"workers{workers}_steps_per_s"] = round(total, 1)
                print(f"bench collect {result['env']}: {workers} worker(s): "
                      f"{', '.join(f'{r:.0f}' for r in rates)} steps/s per worker, {total:.0f} steps/s in all",
                      flush=True)
    finally:
        if not args.dir:
            shutil.rmtree(folder, ignore_errors=True)
    # the ratio last: the dispatcher prints this dict as the last line
    ratio = result.pop("ratio")
    result["ratio"] = ratio
    return result
