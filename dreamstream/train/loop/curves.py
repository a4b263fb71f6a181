"""`dreamstream curves --run RUN [--out PNG]`: a run's curves against env steps, across its resumes.

Reads the run's MLflow history (the store in its run.json settings, else MLFLOW_TRACKING_URI, else
./mlflow.db): return against env steps (`at_env_step/eval/return`, `at_env_step/data/return`) and the
gradient step against env steps (from `data/env_steps`), one colour per process of the run (`run/restarts`),
so a resume shows as a change of colour, never as a gap or a jump back. Prints one line per process.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from typing import Any

from dreamstream.datasets.storage import resolve_location

RETURNS = {"at_env_step/eval/return": "evaluation return", "at_env_step/data/return": "training episodes' return"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, type=resolve_location, help="run folder (path or URL)")
    parser.add_argument("--out", default=None, help="PNG to write (default: <run>/curves.png on local disk)")


def history(client: Any, run_id: str, key: str) -> list[Any]:
    """A metric's entries in the order they were logged."""
    return sorted(client.get_metric_history(run_id, key), key=lambda m: (m.timestamp, m.step))


def processes(client: Any, run_id: str) -> dict[int, list[tuple[float, int]]]:
    """(env steps, gradient step) of every log, by the restart that logged it (0: the first process)."""
    restarts = {(m.timestamp, m.step): int(m.value) for m in history(client, run_id, "run/restarts")}
    out: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for m in history(client, run_id, "data/env_steps"):
        out[restarts.get((m.timestamp, m.step), 0)].append((m.value, m.step))
    return dict(out)


def plot(client: Any, run_id: str, title: str, out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    logs = processes(client, run_id)
    fig, (returns, steps) = plt.subplots(1, 2, figsize=(11, 4))
    for key, label in RETURNS.items():
        points = history(client, run_id, key)
        if points:
            returns.plot([m.step for m in points], [m.value for m in points], marker="o", markersize=3, label=label)
    for restart, points in sorted(logs.items()):
        steps.plot([x for x, _ in points], [y for _, y in points], marker=".", label=f"process {restart}")
        if restart:
            returns.axvline(points[0][0], color="grey", linestyle=":", linewidth=1)
    returns.set(xlabel="env steps", ylabel="return", title="return (dotted: a resume)")
    steps.set(xlabel="env steps", ylabel="gradient step", title="gradient step by process")
    for axes in (returns, steps):
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    from mlflow.tracking import MlflowClient

    from dreamstream.errors import UserError
    from dreamstream.tracking import default_tracking_uri
    from dreamstream.train.run_folder import read_run_file

    stored = read_run_file(args.run)
    if stored is None or not stored.get("mlflow_run_id"):
        raise UserError(f"no trained run in {args.run} (no run.json with an MLflow run id)")
    uri = (stored.get("settings", {}).get("train", {}) or {}).get("mlflow_tracking_uri") or default_tracking_uri()
    client = MlflowClient(uri)
    run_id = stored["mlflow_run_id"]
    logs = processes(client, run_id)
    if not logs:
        raise UserError(f"run {args.run}: MLflow run {run_id} in {uri} has no data/env_steps (an offline run?)")
    for restart, points in sorted(logs.items()):
        print(f"process {restart}: gradient steps {points[0][1]:,}-{points[-1][1]:,}, "
              f"env steps {int(points[0][0]):,}-{int(points[-1][0]):,}")
    if "://" in args.run and args.out is None:
        raise UserError("--out PNG is needed for a run folder that is not on local disk")
    out = args.out or f"{args.run}/curves.png"
    plot(client, run_id, args.run.rsplit("/", 1)[-1], out)
    print(f"wrote {out}")
    return 0
