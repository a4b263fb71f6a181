"""`dreamstream collect --env E --out ROOT`: collect episodes from an environment into a dataset.

`--env` is a preset in configs/ (atari_pong, minigrid_doorkey, cartpole, ...), a YAML file, or any
registered gymnasium id (the adapter is chosen from the id). Flags override `--set` overrides, which
override the preset; of these the command reads the sections of CollectSettings only (no trainer code is
imported). Exit 0 when every worker finished or was stopped by SIGINT/SIGTERM (what was complete is
committed), 1 when a worker failed, 2 for bad input (nothing written).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from dreamstream.arguments import add_progress_arguments, add_set_argument
from dreamstream.collect.config import CollectConfig, EnvConfig
from dreamstream.datasets.storage import resolve_location
from dreamstream.datasets.writer import WriterConfig

log = logging.getLogger("dreamstream.collect")


@dataclass
class CollectSettings:
    """The sections `dreamstream collect` (and `dreamstream bench collect`) reads from presets and --set."""

    env: EnvConfig = field(default_factory=EnvConfig)
    collect: CollectConfig = field(default_factory=CollectConfig)
    data: WriterConfig = field(default_factory=WriterConfig)


class LastBudget(argparse.Action):
    """`--steps N` / `--episodes N`: the budget given last wins, so a wrapper's default (the Makefile's
    `--steps`) composes with either flag given after it."""

    def __call__(self, parser, namespace, values, option_string=None):
        namespace.budget = {"steps": None, "episodes": None, self.dest: values}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", required=True, help="preset name (configs/), YAML file, or gymnasium id")
    parser.add_argument("--out", required=True, type=resolve_location, help="dataset URL: a path, file://, s3://, gs://")
    parser.add_argument("--workers", type=int, help="worker processes (collect.workers, default 1)")
    parser.set_defaults(budget=None)
    parser.add_argument("--steps", type=int, action=LastBudget, help="stop after this many rows over all workers")
    parser.add_argument("--episodes", type=int, action=LastBudget,
                        help="stop after this many finished episodes over all workers (the last of --steps and "
                             "--episodes counts, so `make collect SET=\"--episodes 300\"` replaces its --steps)")
    parser.add_argument("--policy", help="random (default), expert (MiniGrid), or else the location of a run's "
                                         "snapshots (a path or URL holding latest.json)")
    parser.add_argument("--seed", type=int, help="base seed (collect.seed)")
    add_set_argument(parser, "env.grayscale=true or data.shard_max_age_s=5")
    parser.add_argument("--description", default="", help="description for a new dataset's card")
    parser.add_argument("--mlflow", metavar="URI", help="log episode return/length and steps/s to this MLflow store")
    parser.add_argument("--mlflow-run", metavar="RUN_ID", help="attach the metrics to this existing MLflow run")
    add_progress_arguments(parser)


def flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """Command-line flags as settings (applied after --set), taken as typed, not parsed as YAML."""
    collect = {key: getattr(args, flag) for flag, key in (
        ("workers", "workers"), ("policy", "policy"), ("seed", "seed"), ("mlflow", "mlflow_tracking_uri"),
        ("mlflow_run", "mlflow_run_id")) if getattr(args, flag) is not None}
    return {"collect": {**collect, **(args.budget or {})}}


def run(args: argparse.Namespace) -> int:
    from dreamstream.collect.collector import Collector
    from dreamstream.collect.envs import resolve_named
    from dreamstream.collect.progress import MlflowLogger
    from dreamstream.settings import load_settings

    settings, preset = load_settings(CollectSettings, args.env, overrides=args.overrides, values=flag_values(args))
    collect = settings.collect
    env = resolve_named(settings.env, args.env, preset)
    collector = Collector(env, args.out, collect, settings.data, preset=preset, description=args.description)
    collector.prepare()  # bad input fails here, before any worker starts
    mlflow_logger = None
    if collect.mlflow_tracking_uri or collect.mlflow_run_id or collect.mlflow_experiment:
        params = {f"env.{k}": v for k, v in dataclasses.asdict(collector.env).items()}
        params.update({"collect.workers": collect.workers, "collect.policy": collect.policy, "out": args.out,
                       "collect.steps": collect.steps, "collect.episodes": collect.episodes})
        mlflow_logger = MlflowLogger(collect.mlflow_tracking_uri, collect.mlflow_experiment, collect.mlflow_run_id,
                                     params=params, log_seconds=collect.log_seconds)
    summary = collector.run(progress=args.progress, mlflow_logger=mlflow_logger)
    print(summary, flush=True)
    print(json.dumps({"collect": summary.to_json()}), flush=True)
    for index, error in sorted(summary.failed.items()):
        log.error("worker %d: %s", index, error.strip().splitlines()[-1] if error.strip() else error)
    return 1 if summary.failed else 0
