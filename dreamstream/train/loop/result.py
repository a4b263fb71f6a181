"""What a finished training run reports: `dreamstream train` prints it as its last lines."""

from __future__ import annotations

import dataclasses

from dreamstream.redact import redact


@dataclasses.dataclass
class TrainResult:
    """Counters, the final evaluation and where to look next (locations shown redacted)."""

    grad_steps: int
    env_steps: int
    wall_s: float
    run: str
    tracking_uri: str
    mlflow_run_id: str
    evaluation: dict[str, float]  # the final evaluation's eval/* metrics; empty without one

    def __str__(self) -> str:
        minutes, seconds = divmod(int(self.wall_s), 60)
        lines = [f"trained to gradient step {self.grad_steps:,} on {self.env_steps:,} env steps "
                 f"({minutes}m{seconds:02d}s in this process)"]
        if self.evaluation:
            e = self.evaluation
            lines.append(f"final evaluation ({int(e['eval/episodes'])} episodes): success {e['eval/success']:.2f}, "
                         f"return {e['eval/return']:.3f}, length {e['eval/length']:.1f}")
        run, store = redact(self.run), redact(self.tracking_uri)
        lines += [f"run folder:   {run}",
                  f"MLflow store: {store} (run {self.mlflow_run_id})",
                  f"MLflow UI:    .venv/bin/mlflow ui --backend-store-uri {store}"]
        return "\n".join(lines)
