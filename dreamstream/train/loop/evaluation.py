"""Evaluation in separate collector processes: the current snapshot acts (greedily by default) for a few
episodes, which are written to the run's evaluation dataset and never to the training data.

Runs in the background so training continues; results are picked up at the next metrics log. When the
training data's card carries reference scores (a corpus built with `reference_scores:`, or an imported
Minari dataset), the mean return is also logged as `eval/normalised_score` (0 random, 1 expert). Each
evaluation is one collector with one shard writer, so the writers of the evaluation dataset count the
run's evaluations across resumes (`eval/evaluations`), and seed the next one.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from dreamstream.collect.collector import Collector
from dreamstream.collect.config import CollectConfig, EnvConfig
from dreamstream.collect.results import Episode
from dreamstream.datasets.scores import ReferenceScores, normalised_score
from dreamstream.train.loop.run_counters import CommittedTotals

log = logging.getLogger(__name__)


def episode_metrics(episodes: list[Episode], scores: ReferenceScores | None = None) -> dict[str, float]:
    """eval/return, eval/length and eval/success: the share of episodes that ended in a terminal state with a
    positive return (MiniGrid: the goal reached; Atari: a game won); eval/normalised_score with `scores`."""
    if not episodes:
        return {}
    returns = np.array([e.ret for e in episodes])
    normalised = normalised_score(scores, float(returns.mean()))
    return {
        **({} if normalised is None else {"eval/normalised_score": normalised}),
        "eval/return": float(returns.mean()),
        "eval/return_std": float(returns.std()),
        "eval/length": float(np.mean([e.length for e in episodes])),
        "eval/success": float(np.mean([e.terminal and e.ret > 0 for e in episodes])),
        "eval/episodes": float(len(episodes)),
    }


class Evaluator:
    """Starts one evaluation collector at a time and reports its episodes once it has finished."""

    def __init__(self, env: EnvConfig, out: str, snapshots: str, episodes: int, greedy: bool, seed: int,
                 scores: ReferenceScores | None = None):
        self.env, self.out, self.snapshots, self.scores = env, out, snapshots, scores
        self.collect = CollectConfig(workers=1, episodes=episodes, policy=snapshots, greedy=greedy, seed=seed,
                                     poll_seconds=3600.0)
        self.collector: Collector | None = None
        self.totals = CommittedTotals(out).refresh()
        self.step = self.env_steps = 0
        self.runs = 0  # started by this process
        self._earlier = len(self.totals.writers)  # evaluations of earlier processes of the run
        self._results: dict[str, float] = {}

    def evaluations(self) -> int:
        """Evaluations of the whole run that committed episodes (the evaluation dataset's writers)."""
        return len(self.totals.refresh().writers)

    def start(self, step: int, env_steps: int = 0) -> None:
        """Evaluate the latest snapshot (trained on `env_steps`), unless the previous evaluation still runs."""
        self._collect_finished()
        if self.collector is not None:
            log.info("evaluation of step %d still running: skipping the one at step %d", self.step, step)
            return
        number = self._earlier + self.runs  # a seed no earlier evaluation of the run used
        collect = dataclasses.replace(self.collect, seed=self.collect.seed + 1000 * number)
        self.collector = Collector(self.env, self.out, collect, description="evaluation episodes")
        self.collector.start()
        self.step, self.env_steps = step, env_steps
        self.runs += 1

    def _collect_finished(self) -> None:
        if self.collector is None:
            return
        self.collector.poll()
        if self.collector.running:
            return
        summary = self.collector.wait()
        if summary.failed:
            log.error("evaluation at step %d failed: %s", self.step, summary.failed)
        self._results = {**episode_metrics(self.collector.episodes, self.scores), "eval/at_step": float(self.step),
                         "eval/at_env_step": float(self.env_steps)}
        log.info("evaluation at step %d: %s", self.step, self._results)
        self.collector = None

    def wait(self) -> None:
        if self.collector is not None:
            self.collector.wait()
            self._collect_finished()

    def take_results(self) -> dict[str, float]:
        """Metrics of the last finished evaluation, once (empty until one finishes)."""
        self._collect_finished()
        results, self._results = self._results, {}
        return results

    def stop(self) -> None:
        if self.collector is not None:
            self.collector.stop()
            self.collector = None
