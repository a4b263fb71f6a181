"""`dreamstream dream --checkpoint URL --data ROOT [--episode ID] [--start T] [--horizon H] [--out DIR]`.

Encodes one episode with a trained world model, observes its rows 0..T, imagines the next H rows open-loop
(under the recorded actions, or the policy with --policy), and writes to DIR (docs/inspection.md):

    dream.gif     truth | reconstruction | open-loop prediction, one frame per row (H observed rows, then H dreamt)
    strip.png     the same rows left to right: truth, reconstruction and prediction rows per field
    errors.csv    per row: phase, reconstruction and prediction errors per field, reward and termination
    errors.json   the same, plus their means and what was run
    errors.png    the errors against the row, the last observed row marked
    latents.npz   posterior (every row) and dreamt states: deter, stoch, distribution parameters, rows, ...

and logs them (and the mean errors as metrics) to an MLflow run with --mlflow-run.
"""

from __future__ import annotations

import argparse
import logging

from dreamstream.datasets.storage import resolve_location
from dreamstream.tracking import resolve_tracking_uri
from dreamstream.train.dream.window import DEFAULT_HORIZON, DEFAULT_START

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, metavar="URL", type=resolve_location,
                        help="a run folder, its checkpoints/ folder, or a .pt file (a policy snapshot cannot decode)")
    parser.add_argument("--data", required=True, metavar="ROOT", type=resolve_location,
                        help="dataset URL holding the episode")
    parser.add_argument("--episode", metavar="ID", help="episode id (default: the first complete episode)")
    parser.add_argument("--start", type=int, metavar="T",
                        help=f"last observed row: the dream starts after it (default {DEFAULT_START}, or earlier "
                             "in a short episode)")
    parser.add_argument("--horizon", type=int, default=DEFAULT_HORIZON, metavar="H",
                        help=f"rows to imagine open-loop (default {DEFAULT_HORIZON}; at most to the episode's end "
                             "under recorded actions)")
    parser.add_argument("--policy", action="store_true",
                        help="imagine under the policy (greedy) instead of the recorded actions (no prediction error)")
    parser.add_argument("--out", metavar="DIR", help="output folder (default: dream-<episode>-<start>)")
    parser.add_argument("--fps", type=float, default=4.0, help="GIF frames per second (default 4)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--mlflow-run", metavar="RUN_ID", help="log the files and mean errors to this MLflow run")
    parser.add_argument("--mlflow", metavar="URI", type=resolve_tracking_uri,
                        help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or "
                        "./mlflow.db)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dreamstream.datasets import Dataset
    from dreamstream.errors import UserError
    from dreamstream.train.dream.load import load_model
    from dreamstream.train.dream.report import write_report
    from dreamstream.train.runtime import size_torch_threads

    size_torch_threads()
    model = load_model(args.checkpoint, device=args.device)
    if not model.can_decode:
        raise UserError(f"{model.url} is a policy snapshot (encoder, RSSM and actor only): reconstructions and "
                        "predictions need a checkpoint; pass the run folder or <run>/checkpoints")
    dataset = Dataset(args.data)
    model.check_spec(dataset.spec, f"dataset {args.data}")
    report = write_report(model, dataset, Path(args.out) if args.out else None, episode=args.episode,
                          start=args.start, horizon=args.horizon, policy=args.policy, fps=args.fps)
    if args.mlflow_run:
        from dreamstream.tracking import MlflowRun

        try:
            tracker = MlflowRun(args.mlflow, run_id=args.mlflow_run, owns_run=False)
            folder = f"dream/{report.episode}-{report.start}"
            for path in report.files:
                tracker.log_artifact(path, folder)
            tracker.log_metrics({f"dream/{k}": v for k, v in report.mean_errors().items()}, model.step)
            tracker.flush()
        except Exception as exc:  # mlflow raises its own types for an unknown run or an unreachable store
            if isinstance(exc, UserError):
                raise
            raise UserError(f"cannot log to MLflow run {args.mlflow_run}: {str(exc).splitlines()[0]}") from exc
        log.info("logged to MLflow run %s under %s", args.mlflow_run, folder)
    print(f"dream: episode {report.episode}, rows 0-{report.start} observed, {report.horizon} imagined; wrote "
          f"{', '.join(p.name for p in report.files)} to {report.out}", flush=True)
    return 0
