"""TrainConfig: the `train:` section — how long a run is, where it lives, and what happens at which interval.

Counters (docs/train.md, "Steps"): a *gradient step* is one `Learner.train_step` on a [T, B] batch; an
*env step* is one row written by a collector (one agent action; 4 emulator frames on Atari).
"""

from __future__ import annotations

from dataclasses import dataclass

from dreamstream.datasets.storage import resolve_location
from dreamstream.tracking import resolve_tracking_uri


@dataclass
class TrainConfig:
    """Length, location and intervals of a training run."""

    steps: int = 100_000
    """Gradient steps to train for. A resumed run continues to this same total."""
    runs: str = "runs"
    """Folder (local path or fsspec URL) holding run folders; a run lives in `<runs>/<name>/`."""
    name: str | None = None
    """Run folder name. Default: `<preset or env>-<UTC time>`."""
    data: str | None = None
    """Training dataset URL. Online default: `<run>/data`, written by the run's collectors. Offline: required."""
    offline: bool = False
    """Train from a fixed corpus (`data`) with no collector; the loader reads it in epochs."""
    test_data: str | None = None
    """Held-out dataset URL: its world-model loss is logged as `test/*` every `test_interval` steps."""
    prefill_steps: int = 5_000
    """Online: env steps in the dataset before the first gradient step (collected by a random policy)."""
    env_steps_per_grad_step: float = 0.0
    """Online: env steps the collectors may take per gradient step after the prefill (they wait when ahead);
    0: no limit. On a small machine the collectors otherwise take the cores the learner needs."""
    torch_threads: int = 0
    """CPU threads for the learner. 0: the cores left after the run's own collector and evaluation processes
    (at least 1): torch threads that outnumber the cores spin against each other, measured 100x slower here."""
    device: str = "auto"
    """`auto` (cuda if present, else cpu), `cpu`, `cuda`, `cuda:1`, ..."""
    seed: int = 0
    """Seeds torch, NumPy, Python and the loader; collectors get their own seeds from `collect.seed`."""
    log_interval: int = 100
    """Gradient steps between metric logs (metrics are averaged over the interval)."""
    snapshot_interval: int = 200
    """Gradient steps between policy snapshots published for the collectors."""
    checkpoint_interval: int = 1_000
    """Gradient steps between checkpoints (also written at the end and on SIGINT/SIGTERM)."""
    keep_checkpoints: int = 2
    """Checkpoints kept in `<run>/checkpoints`; older ones are pruned."""
    eval_interval: int = 2_000
    """Gradient steps between evaluations (0: never). Each runs `eval_episodes` episodes of the current policy
    in a separate collector process writing to `<run>/eval`, never to the training dataset."""
    eval_episodes: int = 10
    """Episodes per evaluation."""
    eval_greedy: bool = True
    """Evaluate the policy's most likely action instead of a sample."""
    gif_interval: int = 5_000
    """Gradient steps between GIFs of real frames | reconstructions | open-loop predictions (0: never)."""
    test_interval: int = 2_000
    """Gradient steps between world-model test losses on `test_data`."""
    test_batches: int = 4
    """Batches of `test_data` per test loss."""
    mlflow_tracking_uri: str | None = None
    """MLflow store. Default: MLFLOW_TRACKING_URI, else `sqlite:///<cwd>/mlflow.db`."""
    mlflow_experiment: str = "dreamstream"
    """MLflow experiment of the run."""

    def __post_init__(self) -> None:
        self.runs = resolve_location(self.runs)
        self.data = self.data and resolve_location(self.data)
        self.test_data = self.test_data and resolve_location(self.test_data)
        self.mlflow_tracking_uri = self.mlflow_tracking_uri and resolve_tracking_uri(self.mlflow_tracking_uri)
        intervals = {"log_interval": self.log_interval, "snapshot_interval": self.snapshot_interval,
                     "checkpoint_interval": self.checkpoint_interval, "test_interval": self.test_interval}
        bad = [f"{k}={v}" for k, v in intervals.items() if v < 1]
        bad += [f"{k}={v}" for k, v in {"eval_interval": self.eval_interval, "gif_interval": self.gif_interval,
                                         "steps": self.steps, "prefill_steps": self.prefill_steps,
                                         "env_steps_per_grad_step": self.env_steps_per_grad_step}.items() if v < 0]
        if bad:
            raise ValueError(f"train settings out of range: {', '.join(bad)}")
