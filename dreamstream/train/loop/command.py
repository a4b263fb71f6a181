"""`dreamstream train --env E [--data ROOT] [--offline] [--resume] ...`: online or offline DreamerV2 training.

Settings: the env preset (configs/E.yaml, or a gymnasium id with defaults), then `--preset` files in order,
then `--set section.key=value`, then the flags below. A resumed run starts from the settings stored in
its run.json, with this command line's overrides on top (for example a larger `--steps`).
"""

from __future__ import annotations

import argparse
import logging
import re
import time
from typing import TYPE_CHECKING, Any

from dreamstream.arguments import add_progress_arguments, add_set_argument
from dreamstream.datasets.storage import resolve_location

if TYPE_CHECKING:
    from dreamstream.train.loop.settings import TrainSettings

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", default="minigrid_empty",
                        help="preset name (configs/), YAML file, or gymnasium id (default: minigrid_empty)")
    parser.add_argument("--preset", action="append", default=[], metavar="NAME",
                        help="more presets stacked on the env's, in order (e.g. debug)")
    parser.add_argument("--data", help="training dataset URL (online default: <run>/data; offline: required)")
    parser.add_argument("--offline", action="store_true", help="train from --data with collection disabled")
    parser.add_argument("--steps", type=int, help="gradient steps (train.steps)")
    parser.add_argument("--run", type=resolve_location, help="run folder (path or URL); default <train.runs>/<name>")
    parser.add_argument("--name", help="run name (default: <preset>-<UTC time>)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --run/--name from its checkpoint")
    parser.add_argument("--device", help="cpu, cuda, cuda:N (train.device)")
    add_set_argument(parser, "model.deter=256")
    add_progress_arguments(parser)


def flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """Command-line flags as settings (applied after --set), taken as typed, not parsed as YAML."""
    train = {key: getattr(args, key) for key in ("data", "steps", "name", "device") if getattr(args, key) is not None}
    if args.offline:
        train["offline"] = True
    return {"train": train}


def run_folder(settings: TrainSettings, preset: str, args: argparse.Namespace) -> str:
    if args.run:
        return args.run.rstrip("/")
    name = settings.train.name
    if name is None:
        if args.resume:
            from dreamstream.errors import UserError

            raise UserError("--resume needs the run to continue: --run PATH or --name NAME")
        base = preset or re.sub(r"[^A-Za-z0-9_.-]+", "_", settings.env.id)
        name = f"{base}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    return f"{settings.train.runs.rstrip('/')}/{name}"


def run(args: argparse.Namespace) -> int:
    from dreamstream import config
    from dreamstream.collect.envs import resolve_named
    from dreamstream.errors import UserError
    from dreamstream.settings import load_settings, settings_from_dict
    from dreamstream.train.loop.settings import TrainSettings
    from dreamstream.train.loop.trainer import Trainer
    from dreamstream.train.run_folder import read_run_file

    flags = flag_values(args)
    settings, preset = load_settings(TrainSettings, args.env, args.preset, args.overrides, flags)
    run = run_folder(settings, preset, args)
    if args.resume:
        stored = read_run_file(run)
        if stored is None:
            raise UserError(f"--resume: no run in {run} (no run.json)")
        data = stored["settings"]
        for text in args.overrides:
            data = config.merge(data, config.parse_override(text))
        settings, preset = settings_from_dict(TrainSettings, config.merge(data, flags)), stored.get("preset", "")
    if settings.train.offline and not settings.train.data:
        raise UserError("--offline needs --data URL (a dataset or corpus to train from)")
    if not settings.train.offline:  # an unknown env fails here, before a run folder exists
        settings.env = resolve_named(settings.env, args.env, preset)
    log.info("run folder %s", run)
    trainer = Trainer(settings, run, preset=preset, resume=args.resume, progress=args.progress)
    trainer.run()
    print(trainer.result, flush=True)
    return 0
