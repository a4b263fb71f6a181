"""MLflow runs for every dreamstream process: batched metrics, flattened params, artifacts.

One `log_metric` call costs milliseconds (MEASURED.md), so metrics are queued and sent with `log_batch`.
The tracking URI comes from the argument, else MLFLOW_TRACKING_URI, else `sqlite:///$PWD/mlflow.db`.
Params are config values only: storage options and credentials are never part of a config, and every
value is redacted (dreamstream.redact: URL userinfo and presigned query signatures) before logging.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dreamstream.redact import redact

MAX_BATCH = 1000  # MLflow's limit of metrics per log_batch request


def default_tracking_uri() -> str:
    return resolve_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI") or "mlflow.db")


_SQLITE = "sqlite:///"


def resolve_tracking_uri(uri: str) -> str:
    """An MLflow store as typed -> a URI that names the same store from any directory.

    A path ending in `.db` (or `sqlite:///relative.db`) becomes `sqlite:///<absolute path>`; servers
    (`http://...`) and other URIs pass unchanged. MLflow would read a relative sqlite path against each
    process's working directory, and refuses a plain folder (its deprecated file store) by default.
    """
    uri = uri.strip()
    if uri.startswith(_SQLITE):
        return _SQLITE + os.path.abspath(os.path.expanduser(uri[len(_SQLITE):]))
    if ":" in uri.split("/", 1)[0]:  # a scheme: http://, https://, databricks, postgresql://, ...
        return uri
    if uri.endswith((".db", ".sqlite")):
        return _SQLITE + os.path.abspath(os.path.expanduser(uri))
    raise ValueError(f"mlflow_tracking_uri {uri!r}: give a sqlite file (a path ending in .db, or sqlite:///PATH) "
                     "or a tracking server (http://HOST:PORT)")


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """{"a": {"b": 1}} -> {"a.b": "1"}, values as (redacted, truncated) strings."""
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = redact(str(value))[:500]
    return out


class MlflowRun:
    """A new run in `experiment`, or an existing run when `run_id` is given.

    `owns_run` (default: True for a new run) says whether `end` marks the run finished: a collector attached
    to a trainer's run does not end it; a resumed trainer does.
    """

    def __init__(self, tracking_uri: str | None = None, experiment: str = "dreamstream", run_id: str | None = None,
                 run_name: str | None = None, tags: Mapping[str, str] | None = None, owns_run: bool | None = None):
        from mlflow.tracking import MlflowClient

        self.tracking_uri = tracking_uri or default_tracking_uri()
        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        self.owns_run = run_id is None if owns_run is None else owns_run
        if run_id is None:
            found = self.client.get_experiment_by_name(experiment)
            experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)
            tags = {key: redact(str(value)) for key, value in (tags or {}).items()}
            run_name = run_name and redact(run_name)
            run_id = self.client.create_run(experiment_id, run_name=run_name, tags=tags).info.run_id
        self.run_id = run_id
        self._pending: list[Any] = []

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in flatten(params).items()]
        for start in range(0, len(items), 100):  # MLflow's limit of params per request
            self.client.log_batch(self.run_id, params=items[start : start + 100])

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Queue metrics; they are sent by `flush` (call it at the logging interval)."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._pending.extend(Metric(k, float(v), now, step) for k, v in metrics.items())
        if len(self._pending) >= MAX_BATCH:
            self.flush()

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        for start in range(0, len(pending), MAX_BATCH):
            self.client.log_batch(self.run_id, metrics=pending[start : start + MAX_BATCH])

    def max_value(self, key: str) -> float | None:
        """The largest value ever logged for `key` in this run (None if never): what a counter had reached,
        whichever process logged it."""
        return max((m.value for m in self.client.get_metric_history(self.run_id, key)), default=None)

    def log_artifact(self, path: str | Path, folder: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), folder)

    def end(self, failed: bool = False) -> None:
        self.flush()
        if self.owns_run:
            self.client.set_terminated(self.run_id, "FAILED" if failed else "FINISHED")
