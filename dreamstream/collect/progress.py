"""Progress of a collection run: a tqdm bar on a terminal, plain log lines otherwise; optional MLflow.

Metrics (the same names on the bar, in log lines and in MLflow):
- `steps`: rows written by all workers (a reset observation is a row), the x-axis of every MLflow metric.
- `steps_per_s`: rows per second over all workers since the last report.
- `episode/return`, `episode/length`: each finished episode (sum of rewards, rows including the reset row).
- `return`: on the bar and in log lines, the mean return of the last 20 finished episodes.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import deque
from typing import Any

from dreamstream.redact import redact

log = logging.getLogger("dreamstream.collect")


class Progress:
    """Bar or log lines for a Collector; `update(new_episodes)` after each poll."""

    def __init__(self, collector, enabled: bool | None = None, log_seconds: float = 10.0):
        self.collector = collector
        self.tty = sys.stderr.isatty() if enabled is None else enabled
        self.log_seconds = log_seconds
        self.recent: deque[float] = deque(maxlen=20)
        self.bar: Any = None
        self._last = (time.monotonic(), 0)
        self._last_log = time.monotonic()
        self._rate = 0.0
        self._shown = 0

    def _open(self) -> None:
        from tqdm import tqdm

        collect = self.collector.collect
        if collect.steps is not None:
            total, unit = collect.steps, "step"
        elif collect.episodes is not None:
            total, unit = collect.episodes, "episode"
        else:
            total, unit = None, "step"
        self._unit = unit
        self.bar = tqdm(total=total, unit=unit, desc=f"collect {self.collector.env.id}", dynamic_ncols=True)

    def update(self, episodes: list) -> None:
        for episode in episodes:
            self.recent.append(episode.ret)
        steps, n_episodes, shards = self.collector.counts()
        now = time.monotonic()
        t0, s0 = self._last
        if now - t0 >= 1.0:
            self._rate = (steps - s0) / (now - t0)
            self._last = (now, steps)
        mean_return = sum(self.recent) / len(self.recent) if self.recent else float("nan")
        if self.tty:
            if self.bar is None:
                self._open()
            done = steps if self._unit == "step" else n_episodes
            self.bar.update(done - self._shown)
            self._shown = done
            self.bar.set_postfix(steps_per_s=f"{self._rate:.0f}", episodes=n_episodes,
                                 ret=f"{mean_return:.3g}", refresh=False)
        elif now - self._last_log >= self.log_seconds:
            self._last_log = now
            log.info("steps %d, episodes %d, %.0f steps/s, return (last %d) %.3g, shards %d",
                     steps, n_episodes, self._rate, len(self.recent), mean_return, shards)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class MlflowLogger:
    """Episode return/length and steps/s to an MLflow run, batched (one request per `log_seconds`).

    Params (the command's arguments: the output URL, the policy URL) are redacted before they are sent."""

    def __init__(self, tracking_uri: str | None, experiment: str | None, run_id: str | None,
                 params: dict[str, Any] | None = None, log_seconds: float = 10.0):
        import mlflow
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=tracking_uri)
        self._own_run = run_id is None
        if run_id is None:
            name = experiment or "dreamstream-collect"
            found = self.client.get_experiment_by_name(name)
            experiment_id = found.experiment_id if found else self.client.create_experiment(name)
            run_id = self.client.create_run(experiment_id, tags={"dreamstream.command": "collect"}).info.run_id
            for key, value in (params or {}).items():
                self.client.log_param(run_id, key, redact(str(value))[:500])
        self.run_id = run_id
        self._metric = mlflow.entities.Metric
        self._pending: list = []
        self._flushed = time.monotonic()
        self._last = (time.monotonic(), 0)
        self.log_seconds = log_seconds

    def update(self, collector, episodes: list) -> None:
        now_ms = int(time.time() * 1000)
        steps = collector.counts()[0]
        for episode in episodes:
            self._pending.append(self._metric("episode/return", float(episode.ret), now_ms, steps))
            self._pending.append(self._metric("episode/length", float(episode.length), now_ms, steps))
        now = time.monotonic()
        if now - self._flushed >= self.log_seconds:
            t0, s0 = self._last
            self._pending.append(self._metric("steps_per_s", (steps - s0) / max(now - t0, 1e-9), now_ms, steps))
            self._last = (now, steps)
            self.flush()

    def flush(self) -> None:
        self._flushed = time.monotonic()
        for start in range(0, len(self._pending), 1000):  # MLflow's batch limit
            self.client.log_batch(self.run_id, metrics=self._pending[start:start + 1000])
        self._pending = []

    def finish(self, summary) -> None:
        now_ms = int(time.time() * 1000)
        self._pending.append(self._metric("steps_per_s_total", summary.steps_per_second, now_ms, summary.steps))
        self.flush()
        if self._own_run:
            self.client.set_terminated(self.run_id, "FAILED" if summary.failed else "FINISHED")
