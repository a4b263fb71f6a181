"""A run folder (any fsspec URL) and its `run.json`: what `--resume` needs to continue a run.

    <run>/run.json        settings, preset, creation time, restart count and MLflow run id
    <run>/data/           online training dataset (unless train.data points elsewhere)
    <run>/eval/           evaluation episodes (never mixed into training data)
    <run>/snapshots/      acting-only policy snapshots + latest.json (what collectors poll)
    <run>/checkpoints/    model, optimisers, step, loader position, RNG + latest.json
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

from dreamstream.datasets.storage import open_fs, replace_bytes
from dreamstream.errors import UserError

RUN_FILE = "run.json"


@dataclasses.dataclass(frozen=True)
class RunPaths:
    """Where each part of a run lives."""

    run: str
    data: str
    eval: str
    snapshots: str
    checkpoints: str

    @classmethod
    def of(cls, run: str, data: str | None) -> RunPaths:
        run = run.rstrip("/")
        return cls(run=run, data=data or f"{run}/data", eval=f"{run}/eval", snapshots=f"{run}/snapshots",
                   checkpoints=f"{run}/checkpoints")


def read_run_file(run: str) -> dict[str, Any] | None:
    """The run's `run.json`, or None when the folder holds no run yet."""
    fs, root = open_fs(run)
    try:
        return json.loads(fs.cat_file(f"{root}/{RUN_FILE}"))
    except FileNotFoundError:
        return None


class RunFile:
    """`run.json` of the run being trained: created by a new run, re-read and counted by a resumed one."""

    def __init__(self, run: str, resume: bool, preset: str, settings: dict[str, Any]) -> None:
        existing = read_run_file(run)
        if existing is not None and not resume:
            raise UserError(f"run folder {run} already holds a run: pass --resume to continue it, "
                            "or choose another --name")
        self.run = run
        self.resume = resume
        self.values = existing or {"preset": preset, "created": time.time(), "restarts": -1, "settings": settings}
        self.values["restarts"] = int(self.values.get("restarts", -1)) + 1
        self._write()

    @property
    def restarts(self) -> int:
        """How many times this run was resumed (0 for a new run)."""
        return int(self.values.get("restarts", 0))

    @property
    def mlflow_run_id(self) -> str | None:
        """The MLflow run to continue when resuming; None starts a new one."""
        return self.values.get("mlflow_run_id") if self.resume else None

    def update(self, **values: Any) -> None:
        self.values.update(values)
        self._write()

    def _write(self) -> None:
        fs, root = open_fs(self.run)
        fs.makedirs(root, exist_ok=True)
        replace_bytes(fs, f"{root}/{RUN_FILE}", json.dumps(self.values, indent=2, default=str).encode())
