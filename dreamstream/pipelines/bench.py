"""Deep stats throughput on a LocalCluster (1 and 2 workers), as a ratio to reading the same bytes.

Writes a local dataset of at least `--mib` MiB (64x64x3 frames with plain .npy members, so the bytes on
disk are the bytes decoded), then in the same run: reads every shard's bytes in this process (the
baseline), runs `stats --deep` in this process and on LocalClusters of 1 and 2 worker processes, and
`stats` without --deep. The cluster start-up and the workers' first imports are timed apart and not
counted in the throughput. The dataset was just written, so every read comes from the page cache.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mib", type=int, default=512, help="dataset size in MiB (default 512, >= 500 MB)")
    parser.add_argument("--shard-mib", type=int, default=32, help="shard size in MiB (default 32)")
    parser.add_argument("--workers", default="1,2", help="LocalCluster sizes to time (default 1,2)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed runs per setting, reported as min/median/max (default 3)")
    parser.add_argument("--dir", help="where to write the dataset (default: a temporary folder, removed after)")


def make_dataset(url: str, mib: int, shard_mib: int) -> tuple[int, int]:
    """-> (bytes, steps) of a new dataset of 64x64x3 frames + an 8-vector, 18 actions, 1000-step episodes."""
    from gymnasium import spaces

    from dreamstream.datasets import DatasetCard, EpisodeWriter, WriterConfig, spec_from_spaces
    from dreamstream.datasets.synthetic import random_episode

    spec = spec_from_spaces(spaces.Dict(image=spaces.Box(0, 255, (64, 64, 3), np.uint8),
                                        vector=spaces.Box(-1, 1, (8,), np.float32)), spaces.Discrete(18))
    card = DatasetCard.create(spec, env_id="Bench-v0", description="bench stats")
    config = WriterConfig(chunk_steps=1000, shard_max_bytes=shard_mib * 2**20, shard_max_age_s=3600,
                          compress_level=None)
    rng = np.random.default_rng(0)
    target = mib * 2**20
    written = steps = 0
    with EpisodeWriter(url, card, config, writer_id="bench") as writer:
        while written < target:
            episode = random_episode(spec, 1000, rng, terminal=bool(rng.integers(2)))
            writer.add_episode(episode, policy="random", policy_version=int(rng.integers(3)))
            steps += 1000
            written += sum(a.nbytes for a in episode.values())  # plain .npy: the shard bytes, less headers
    return sum(r.bytes for r in writer.committed), steps


def read_bytes(url: str) -> tuple[float, int]:
    """The baseline: every committed shard's bytes read whole in this process. -> (seconds, bytes)."""
    from dreamstream.datasets import Dataset

    dataset = Dataset(url)
    records = dataset.records()
    started = time.perf_counter()
    total = 0
    for record in records:
        with dataset.fs.open(f"{dataset.root}/{record.shard_path}", "rb") as f:
            total += len(f.read())
    return time.perf_counter() - started, total


def spread(values: list[float]) -> dict[str, float]:
    """min/median/max of repeated measurements."""
    return {"min": round(min(values), 3), "median": round(float(np.median(values)), 3), "max": round(max(values), 3)}


def timed_stats(url: str, runner: Any, deep: bool, repeats: int) -> tuple[list[float], float, dict[str, float]]:
    """-> (shard-phase seconds of each run, CPU seconds the task processes spent per run on average,
    seconds per stage per run on average: read, decode, accumulate summed over tasks, merge on the client)."""
    import time as clock

    from dreamstream.pipelines.stats import compute_stats

    def cpu() -> float:
        if runner.client is None:
            return clock.process_time()
        return sum(runner.client.run(clock.process_time).values())

    before = cpu()
    seconds = [compute_stats(url, runner, deep=deep).summary["seconds"] for _ in range(repeats)]
    stages = {stage: sum(s["stages_s"][stage] for s in seconds) / repeats for stage in seconds[0]["stages_s"]}
    return [s["shards_s"] for s in seconds], (cpu() - before) / repeats, stages


def run(args: argparse.Namespace) -> dict[str, Any]:
    from dreamstream.pipelines.cluster import ClusterConfig, open_runner

    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="dreamstream-bench-stats-"))
    url = str(folder / "dataset")
    try:
        started = time.perf_counter()
        size, steps = make_dataset(url, args.mib, args.shard_mib)
        log.info("wrote %.0f MiB, %d steps in %.1f s", size / 2**20, steps, time.perf_counter() - started)
        mb = size / 1e6
        reads = [read_bytes(url)[0] for _ in range(args.repeats + 1)][1:]  # the first one warms the cache
        read_s = float(np.median(reads))
        result: dict[str, Any] = {"bench": "stats", "dataset_mb": round(mb, 1), "steps": steps,
                                  "cpus": os.cpu_count(), "load_average_before": [round(x, 2) for x in os.getloadavg()],
                                  "read_mb_s": round(mb / read_s, 1), "read_s": spread(reads)}
        with open_runner(ClusterConfig(workers=0, progress=False)) as runner:
            walls, cpu_s, _ = timed_stats(url, runner, True, args.repeats)
        result["deep_in_process_mb_s"] = round(mb / float(np.median(walls)), 1)
        deep: dict[str, list[float]] = {}
        deep_cpu: dict[str, float] = {}
        stages: dict[str, dict[str, float]] = {}
        shallow: dict[str, float] = {}
        startup: dict[str, float] = {}
        for n in [int(x) for x in args.workers.split(",")]:
            started = time.perf_counter()
            with open_runner(ClusterConfig(workers=n, dashboard_address=":0", progress=False)) as runner:
                runner.client.run(__import__, "dreamstream.pipelines.stats")  # first imports, off the clock
                startup[str(n)] = round(time.perf_counter() - started, 2)
                deep[str(n)], deep_cpu[str(n)], stages[str(n)] = timed_stats(url, runner, True, args.repeats)
                shallow[str(n)] = float(np.median(timed_stats(url, runner, False, args.repeats)[0]))
        result["deep_mb_s"] = {n: round(mb / float(np.median(s)), 1) for n, s in deep.items()}
        result["deep_s"] = {n: spread(s) for n, s in deep.items()}
        result["deep_ratio_to_read"] = {n: round(read_s / float(np.median(s)), 3) for n, s in deep.items()}
        # each run against the median read: min/median/max of the ratio over the repeats
        result["deep_ratio_spread"] = {n: spread([read_s / x for x in s]) for n, s in deep.items()}
        # worker seconds per stage (summed over tasks; merge: the client's), per run
        result["deep_stages_s"] = {n: {k: round(v, 3) for k, v in st.items()} for n, st in stages.items()}
        # CPU seconds of the worker processes per GB: what the work costs, whatever else runs on the machine
        result["deep_worker_cpu_s_per_gb"] = {n: round(c / (mb / 1000), 2) for n, c in deep_cpu.items()}
        result["deep_frames_per_s"] = {n: round(steps / float(np.median(s))) for n, s in deep.items()}
        result["shallow_mb_s"] = {n: round(mb / s, 1) for n, s in shallow.items()}
        if "1" in deep and "2" in deep:
            result["scaling_1_to_2"] = round(float(np.median(deep["1"])) / float(np.median(deep["2"])), 2)
        result["cluster_start_s"] = startup
        result["load_average"] = [round(x, 2) for x in os.getloadavg()]  # other processes sharing the cores
        print(f"bench stats: {mb:.0f} MB, {steps} frames; read {result['read_mb_s']} MB/s (median of "
              f"{args.repeats}); in-process deep stats {result['deep_in_process_mb_s']} MB/s", flush=True)
        for n in deep:
            ratio, st = result["deep_ratio_spread"][n], result["deep_stages_s"][n]
            print(f"  deep stats, {n} worker(s): {result['deep_mb_s'][n]} MB/s; ratio to read min/median/max "
                  f"{ratio['min']}/{ratio['median']}/{ratio['max']}; worker seconds per run: "
                  + ", ".join(f"{k} {v}" for k, v in st.items()), flush=True)
        if "scaling_1_to_2" in result:
            print(f"  1->2 workers x{result['scaling_1_to_2']}", flush=True)
        return result
    finally:
        if not args.dir:
            shutil.rmtree(folder, ignore_errors=True)
