"""`dreamstream bench TARGET`: measured performance, each figure next to a baseline taken in the same run.

A target module exposes `add_arguments(parser)` and `run(args) -> dict`; the dict is printed as the
last line, in JSON, for scripts to read. `all` runs every target with its defaults (`make bench`).
"""

from __future__ import annotations

import argparse
import importlib
import json

from dreamstream import smoke

TARGETS: dict[str, str] = {
    "format": "dreamstream.datasets.bench",
    "loader": "dreamstream.datasets.loader.bench",
    "episodes": "dreamstream.datasets.episode_bench",
    "stats": "dreamstream.pipelines.bench",
    "collect": "dreamstream.collect.bench",
    "train": "dreamstream.train.bench",
}


# DREAMSTREAM_SMOKE: each target's sizes capped (dreamstream/smoke.py) so that it runs in seconds
SMOKE_CAPS: dict[str, dict[str, object]] = {
    "format": {"frames": 600},
    "loader": {"frames": 1_000, "repeats": 1, "batch_size": 4, "seq_len": 16},
    "episodes": {"episodes": 6, "steps": 50, "chunk_steps": 20, "shard_mib": 0.2, "repeats": 1},
    "stats": {"mib": 2, "shard_mib": 1, "workers": "1", "repeats": 1},
    "collect": {"steps": 300, "worker_steps": 200, "repeats": 1},
    "train": {"steps": 2, "warmup": 1, "batch": 2, "length": 8},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="target", required=True, metavar="TARGET")
    for name, module_name in TARGETS.items():
        module = importlib.import_module(module_name)
        target = sub.add_parser(name, help=(module.__doc__ or "").splitlines()[0])
        module.add_arguments(target)
    sub.add_parser("all", help="every benchmark with its defaults")


def run(args: argparse.Namespace) -> int:
    names = list(TARGETS) if args.target == "all" else [args.target]
    for name in names:
        module = importlib.import_module(TARGETS[name])
        if args.target == "all":  # each target with its own defaults
            parser = argparse.ArgumentParser()
            module.add_arguments(parser)
            target_args = parser.parse_args([])
        else:
            target_args = args
        if smoke.enabled():
            smoke.cap(target_args, SMOKE_CAPS[name])
        result = module.run(target_args)
        print(json.dumps(result), flush=True)
    return 0
