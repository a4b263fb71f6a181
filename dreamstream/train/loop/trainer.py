"""The trainer process: one loop a newcomer can read top to bottom.

    next batch -> world-model + actor-critic step -> log / snapshot / evaluate / checkpoint

Online, it starts collector workers that act with the policy snapshots it publishes, waits for a
prefill, and streams the growing dataset in follow mode. Offline, it starts no collector and reads a
fixed corpus in epochs. A run lives in one folder (any fsspec URL; its layout: train/run_folder.py).
The parts it drives each have their module: online.py (collectors), learner.py (one step),
train/runtime.py (device, threads, RNG), evaluation.py, metrics.py; what it publishes (checkpoints, policy snapshots) is
written by dreamstream.versioned and train/model/policy_snapshot.py. The counters that describe the run
(env steps, episodes, evaluations, snapshot version, wall time) come from durable state and continue
across resumes (run_counters.py); data and evaluation metrics are also logged against env steps
(`at_env_step/...`, docs/train.md).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from dreamstream import config as config_lib
from dreamstream.datasets import Dataset
from dreamstream.datasets.loader import make_loader, to_device
from dreamstream.errors import UserError
from dreamstream.tracking import MlflowRun
from dreamstream.train.loop.evaluation import Evaluator
from dreamstream.train.loop.learner import Learner
from dreamstream.train.loop.metrics import IntervalMetrics, metrics_to_floats
from dreamstream.train.loop.online import OnlineCollection
from dreamstream.train.loop.result import TrainResult
from dreamstream.train.loop.run_counters import CommittedTotals, WallClock, next_snapshot_version
from dreamstream.train.loop.settings import TrainSettings
from dreamstream.train.model.agent import Agent
from dreamstream.train.model.policy_snapshot import export_policy
from dreamstream.train.run_folder import RunFile, RunPaths
from dreamstream.train.runtime import (
    default_device,
    rng_state,
    seed_everything,
    set_rng_state,
    size_torch_threads,
)
from dreamstream.versioned.files import VersionedFiles
from dreamstream.versioned.formats import checkpoint_payload

log = logging.getLogger(__name__)

class Trainer:
    """Owns the agent, its learner, the data stream, the collectors and the tracking of one run."""

    def __init__(self, settings: TrainSettings, run: str, preset: str = "", resume: bool = False,
                 progress: bool | None = None):
        self.settings = settings
        self.cfg = settings.train
        self.preset = preset
        self.paths = RunPaths.of(run, self.cfg.data)
        self.resume = resume
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.online: OnlineCollection | None = None
        self.evaluator: Evaluator | None = None
        self.tracker: MlflowRun | None = None
        self._stop_signal: int | None = None
        self.clock = WallClock()  # its base comes from the checkpoint (or MLflow) when resuming
        self._checkpoint_counters: dict[str, float] = {}
        self._published: int | None = None  # the last snapshot version in <run>/snapshots
        self._published_step = -1  # the gradient step whose weights that version holds (-1: not this process's)
        self._last_eval: dict[str, float] = {}  # the latest finished evaluation (for the bar and the result)
        self.result: TrainResult | None = None  # set when the run ends without an error
        self._checkpoint_step = -1  # what finish() need not write again
        self.device = default_device() if self.cfg.device == "auto" else torch.device(self.cfg.device)

    # -- the loop ------------------------------------------------------------------------------------------

    def run(self) -> int:
        """Train until `train.steps` gradient steps or a stop signal; -> the step reached."""
        self._install_signal_handlers()
        try:
            self.setup()
            batches = self.batches()
            state = None
            window = IntervalMetrics()
            bar = self._progress_bar()
            while self.learner.step < self.cfg.steps and self._stop_signal is None:
                batch = next(batches)
                metrics, state = self.learner.train_step(batch, state)
                window.add(metrics)
                step = self.learner.step
                if self.online is not None:
                    self.online.pace(step - self._first_step)
                bar.update(1)
                if step % self.cfg.log_interval == 0:
                    self.log_metrics(step, window.take(), bar)
                if step % self.cfg.snapshot_interval == 0:
                    self.publish_snapshot()
                if self.cfg.eval_interval and step % self.cfg.eval_interval == 0:
                    self.start_evaluation()
                if self.cfg.test_data and step % self.cfg.test_interval == 0:
                    self.log_test_loss(step)
                if self.cfg.gif_interval and step % self.cfg.gif_interval == 0:
                    self.log_gif(step, batch)
                if step % self.cfg.checkpoint_interval == 0:
                    self.save_checkpoint()
            bar.close()
            self.finish()
            return self.learner.step
        except BaseException:
            self.close(failed=True)
            raise

    # -- setup ---------------------------------------------------------------------------------------------

    def setup(self) -> None:
        seed_everything(self.cfg.seed)
        others = (0 if self.cfg.offline else self.settings.collect.workers) + (1 if self.cfg.eval_interval else 0)
        size_torch_threads(others, self.cfg.torch_threads)
        self.run_file = RunFile(self.paths.run, self.resume, self.preset, config_lib.to_dict(self.settings))
        self.snapshots = VersionedFiles(self.paths.snapshots, "policy", keep=3)
        self._published = self.snapshots.latest_version()
        self.checkpoints = VersionedFiles(self.paths.checkpoints, "checkpoint", keep=self.cfg.keep_checkpoints)
        if self.cfg.offline:
            spec = Dataset(self.paths.data).card.spec
        else:
            self.online = OnlineCollection(self.settings, self.paths.data, self.paths.snapshots, self.preset,
                                           self.paths.run, self.run_file.restarts)
            spec = self.online.start(stopping=lambda: self._stop_signal is not None)
        self.agent = Agent(spec, self.settings.model)
        self.learner = Learner(self.agent, self.settings.optim, self.device)
        self.loader = make_loader(self.paths.data, self._loader_config())
        if self.loader.spec != spec:
            raise UserError(f"dataset {self.paths.data} has a different spec than the environment: "
                            f"{self.loader.spec.to_json()} vs {spec.to_json()}")
        if self.resume:
            self.load_checkpoint()
        self._first_step = self.learner.step
        self.tracker = MlflowRun(self.cfg.mlflow_tracking_uri, self.cfg.mlflow_experiment,
                                 run_id=self.run_file.mlflow_run_id, run_name=Path(self.paths.run).name,
                                 tags={"dreamstream.command": "train"}, owns_run=True)
        if not self.resume:
            self.tracker.log_params({**config_lib.to_dict(self.settings), "run": self.paths.run,
                                     "preset": self.preset, "device": str(self.device),
                                     "precision": self.learner.precision, "torch_threads": torch.get_num_threads()})
            self.run_file.update(mlflow_run_id=self.tracker.run_id)
        else:  # the time a kill -9 lost after the last checkpoint is in MLflow's last value
            logged = self.tracker.max_value("time/wall_s") or 0.0
            self.clock.base = max(float(self._checkpoint_counters.get("wall_s", 0.0)), logged)
        self.evaluator = self._make_evaluator()
        if self._published is None or self._published != self._checkpoint_counters.get("snapshot_version"):
            self.publish_snapshot()  # else the latest snapshot holds the checkpoint's weights (a clean stop)
        else:
            self._published_step = self.learner.step

    def _loader_config(self):
        return dataclasses.replace(self.settings.loader, follow=not self.cfg.offline,
                                   seed=self.settings.loader.seed + self.cfg.seed)

    def batches(self) -> Iterator[dict[str, torch.Tensor]]:
        """Endless batches (epochs repeat in fixed mode); collector messages are handled in between."""
        for batch in self.loader.forever():
            if self.online is not None:
                self.online.poll_if_due()
            yield batch

    def _make_evaluator(self) -> Evaluator | None:
        if not self.cfg.eval_interval:
            return None
        card = Dataset(self.paths.data).card
        env = self.settings.env
        if self.cfg.offline and card.env_config:  # evaluate in the environment the corpus came from
            env = config_lib.from_dict(type(env), card.env_config)
        return Evaluator(env, self.paths.eval, self.paths.snapshots, self.cfg.eval_episodes, self.cfg.eval_greedy,
                         self.settings.collect.seed + 10_000, scores=card.reference_scores)

    # -- periodic work ---------------------------------------------------------------------------------------

    def log_metrics(self, step: int, metrics: dict[str, float], bar: Any) -> None:
        metrics.update({f"loader/{k}": v for k, v in self.loader.metrics().items()})
        metrics.update(self.run_counters())
        if self.online is not None:
            metrics.update(self.online.metrics())
        if self.evaluator is not None:
            metrics.update(self._take_evaluation())
        self._log(metrics, step)
        assert self.tracker is not None
        self.tracker.flush()
        shown = {"env_steps": metrics.get("data/env_steps"), "loss": metrics.get("loss/model"),
                 "eval_success": self._last_eval.get("eval/success")}
        bar.set_postfix({k: f"{v:.3g}" for k, v in shown.items() if v is not None}, refresh=False)
        if not self.progress:
            log.info("step %d: %s", step, ", ".join(f"{k} {v:.4g}" for k, v in sorted(metrics.items())))

    def run_counters(self) -> dict[str, float]:
        """Counters of the whole run that only this trainer knows: the last snapshot version, training wall
        time, evaluations and restarts (the resume that logged it; data/* counters: OnlineCollection.metrics)."""
        counters = {"time/wall_s": self.clock.total(), "run/restarts": float(self.run_file.restarts)}
        if self._published is not None:
            counters["snapshot/version"] = float(self._published)
        if self.evaluator is not None:
            counters["eval/evaluations"] = float(self.evaluator.evaluations())
        return counters

    def _log(self, metrics: dict[str, float], step: int) -> None:
        """Log against the gradient step; online, the data and evaluation metrics also against env steps
        (`at_env_step/<key>`: committed env steps at the log, or at the start of the evaluation)."""
        assert self.tracker is not None
        self.tracker.log_metrics(metrics, step)
        if self.online is None:
            return
        data = {f"at_env_step/{k}": v for k, v in metrics.items() if k.startswith("data/") and k != "data/env_steps"}
        if data and "data/env_steps" in metrics:
            self.tracker.log_metrics(data, int(metrics["data/env_steps"]))
        if "eval/at_env_step" in metrics:
            evaluation = {f"at_env_step/{k}": v for k, v in metrics.items()
                          if k.startswith("eval/") and k not in ("eval/at_env_step", "eval/evaluations")}
            self.tracker.log_metrics(evaluation, int(metrics["eval/at_env_step"]))

    def publish_snapshot(self) -> None:
        """Publish the acting weights as the next snapshot version (> every version published before)."""
        version = next_snapshot_version(self.learner.step, self._published)
        self.snapshots.save(export_policy(self.agent, policy_version=version), version)
        self._published, self._published_step = version, self.learner.step

    def start_evaluation(self) -> None:
        if self.evaluator is not None:
            self.evaluator.start(self.learner.step, self._committed_env_steps() if self.online is not None else 0)

    def _committed_env_steps(self) -> int:
        """Env steps in the training dataset's commit records now (online: counted incrementally)."""
        online = self.online.totals if self.online is not None else None
        return (online or CommittedTotals(self.paths.data)).refresh().steps

    @torch.no_grad()
    def log_test_loss(self, step: int) -> None:
        assert self.cfg.test_data is not None
        loader = make_loader(self.cfg.test_data, dataclasses.replace(self._loader_config(), follow=False))
        totals: dict[str, float] = {}
        for batch in itertools.islice(loader.forever(), self.cfg.test_batches):
            batch = to_device(batch, self.device)
            output = self.agent.wm(batch, self.agent.initial_state(batch["reward"].shape[1], self.device))
            for key, value in metrics_to_floats({"loss": output.loss, **output.metrics}).items():
                totals[key] = totals.get(key, 0.0) + value / self.cfg.test_batches
        loader.close()
        assert self.tracker is not None
        self.tracker.log_metrics({f"test/{k}": v for k, v in totals.items()}, step)

    def log_gif(self, step: int, batch: dict[str, torch.Tensor]) -> None:
        from dreamstream.train.dream.video import log_dream_gif

        assert self.tracker is not None
        with tempfile.TemporaryDirectory() as tmp:
            path = log_dream_gif(self.agent, batch, Path(tmp) / f"dream-{step:09d}.gif")
            if path is not None:
                self.tracker.log_artifact(path, "dreams")

    # -- checkpoints -----------------------------------------------------------------------------------------

    def save_checkpoint(self) -> None:
        published = self._published if self._published_step == self.learner.step else -1
        counters = {"wall_s": self.clock.total(), "snapshot_version": -1 if published is None else published}
        payload = checkpoint_payload(self.learner.step, self.learner.state_dict(), self.loader.state_dict(),
                                     rng_state(), self.agent.spec, config_lib.to_dict(self.settings.model),
                                     counters)
        url = self.checkpoints.save(payload, self.learner.step)
        self._checkpoint_step = self.learner.step
        log.info("checkpoint %s", url)

    def load_checkpoint(self) -> None:
        payload = self.checkpoints.load(map_location=self.device)
        if payload is None:
            log.warning("--resume: no checkpoint in %s yet; starting at step 0", self.paths.checkpoints)
            return
        self.learner.load_state_dict(payload["learner"])
        self.loader.load_state_dict(payload["loader"])
        set_rng_state(payload["rng"])
        self._checkpoint_counters = dict(payload.get("counters") or {})
        log.info("resumed from step %d", self.learner.step)

    # -- signals, shutdown -------------------------------------------------------------------------

    def _install_signal_handlers(self) -> None:
        def handler(signum: int, frame: Any) -> None:
            if self._stop_signal is not None:  # a second signal: stop now
                raise KeyboardInterrupt
            log.info("signal %d: finishing the step, checkpointing and stopping", signum)
            self._stop_signal = signum

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)

    def _progress_bar(self) -> Any:
        from tqdm import tqdm

        return tqdm(total=self.cfg.steps, initial=self.learner.step, unit="step", desc="train",
                    disable=not self.progress, dynamic_ncols=True)

    def finish(self) -> None:
        """Final snapshot and checkpoint, a last evaluation, the counters' last values, and a clean shutdown."""
        step = self.learner.step
        if self._published_step != step:  # first, so that the checkpoint records the version of its weights
            self.publish_snapshot()
        if self._checkpoint_step != step:
            self.save_checkpoint()
        if self.evaluator is not None and self._stop_signal is None:
            self.evaluator.wait()  # one still running first
            self._log(self._take_evaluation(), step)
            if not (self.evaluator.runs and self.evaluator.step == step):  # then the final policy, once
                self.start_evaluation()
                self.evaluator.wait()
                self._log(self._take_evaluation(), step)
        self._log({**self.run_counters(), **(self.online.metrics() if self.online is not None else {})}, step)
        self.result = self._result()
        self.close(failed=False)

    def _take_evaluation(self) -> dict[str, float]:
        assert self.evaluator is not None
        results = self.evaluator.take_results()
        if "eval/episodes" in results:
            self._last_eval = results
        return results

    def _result(self) -> TrainResult:
        assert self.tracker is not None
        return TrainResult(grad_steps=self.learner.step, env_steps=self._committed_env_steps(),
                           wall_s=time.monotonic() - self.clock.started, run=self.paths.run,
                           tracking_uri=self.tracker.tracking_uri, mlflow_run_id=self.tracker.run_id,
                           evaluation=dict(self._last_eval))

    def close(self, failed: bool) -> None:
        if self.online is not None:
            self.online.stop()
            self.online = None
        if self.evaluator is not None:
            self.evaluator.stop()
            self.evaluator = None
        if getattr(self, "loader", None) is not None:
            self.loader.close()
        if self.tracker is not None:
            self.tracker.end(failed=failed)
            self.tracker = None
