"""Online data for the trainer: collector workers that act with its latest snapshot, paced by its steps.

They act randomly until the first snapshot appears, fill `train.prefill_steps` env steps before the
first gradient step, then may write `train.env_steps_per_grad_step` env steps per gradient step (0: as
fast as they can). Their messages are handled between batches, at most every POLL_S seconds (a poll is
a syscall plus unpickling: 1% of a step when done every step).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

import numpy as np

from dreamstream.collect.collector import Collector
from dreamstream.datasets.spec import EpisodeSpec
from dreamstream.errors import UserError
from dreamstream.train.loop.run_counters import CommittedTotals
from dreamstream.train.loop.settings import TrainSettings

log = logging.getLogger(__name__)

POLL_S = 0.25


class OnlineCollection:
    """The collectors of one online run, writing to `data` and acting with the snapshots in `snapshots`."""

    def __init__(self, settings: TrainSettings, data: str, snapshots: str, preset: str, run: str,
                 restarts: int) -> None:
        self.cfg = settings.train
        self.data = data
        collect = dataclasses.replace(settings.collect, policy=snapshots, wait_for_snapshot=True, steps=None,
                                      episodes=None, seed=settings.collect.seed + restarts)
        self.collector: Collector | None = Collector(settings.env, data, collect, settings.data, preset=preset,
                                                     description=f"online training data of run {run}")
        self.totals: CommittedTotals | None = None  # the dataset's commit records, counted once the card exists
        self._prefill_budget = 0
        self._polled = 0.0

    def start(self, stopping: Callable[[], bool]) -> EpisodeSpec:
        """Start the workers and wait for the prefill (`stopping()` true: KeyboardInterrupt); -> the spec."""
        assert self.collector is not None
        self.collector.prepare()
        self.totals = CommittedTotals(self.data).refresh()
        if self.cfg.env_steps_per_grad_step:
            self._prefill_budget = max(self.cfg.prefill_steps - self.totals.steps, 0)
            self.collector.allow_steps(self._prefill_budget)
        self.collector.start()
        self._wait_for_prefill(stopping)
        return self.collector.card.spec

    def _wait_for_prefill(self, stopping: Callable[[], bool]) -> None:
        assert self.collector is not None and self.totals is not None
        last_log = 0.0
        while True:
            steps = self.totals.refresh().steps
            if steps >= self.cfg.prefill_steps:
                log.info("prefill done: %d env steps in %s", steps, self.data)
                return
            self.collector.poll(timeout=0.5)
            if not self.collector.running:
                raise UserError(f"the collectors stopped before the prefill of {self.cfg.prefill_steps} steps: "
                                f"{self.collector.summary()}")
            if stopping():
                raise KeyboardInterrupt
            if time.monotonic() - last_log > 10:
                last_log = time.monotonic()
                log.info("prefill: %d / %d env steps", steps, self.cfg.prefill_steps)

    def pace(self, trained_steps: int) -> None:
        """Allow `env_steps_per_grad_step` env steps per gradient step trained in this process."""
        if self.collector is not None and self.cfg.env_steps_per_grad_step:
            self.collector.allow_steps(self._prefill_budget + int(trained_steps * self.cfg.env_steps_per_grad_step))

    def poll_if_due(self) -> None:
        """Handle the workers' messages when POLL_S has passed since the last time."""
        if self.collector is not None and time.monotonic() - self._polled >= POLL_S:
            self.collector.poll()
            self._polled = time.monotonic()

    def metrics(self) -> dict[str, float]:
        """data/* metrics: env steps, finished episodes, frames and shards in the dataset's commit records (the
        whole run's, across resumes), and the mean return of the last 20 episodes this process's collectors
        finished."""
        assert self.collector is not None and self.totals is not None
        totals = self.totals.refresh()
        metrics = {"data/env_steps": float(totals.steps), "data/episodes": float(totals.episodes),
                   "data/frames": float(totals.frames), "data/shards": float(totals.shards)}
        summary = self.collector.summary()
        if summary.returns:
            metrics["data/return"] = float(np.mean(summary.returns[-20:]))
        return metrics

    def stop(self) -> None:
        if self.collector is not None:
            self.collector.stop()
            self.collector = None
