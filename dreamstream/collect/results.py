"""What a collection run reports: each finished Episode, each worker's WorkerState, and the run's Summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dreamstream.redact import redact


@dataclass(frozen=True)
class Episode:
    """One finished episode as a worker reports it."""

    worker: int
    ret: float
    length: int
    terminal: bool
    policy: str
    policy_version: int


@dataclass
class WorkerState:
    """What the parent knows about one worker."""

    index: int
    steps: int = 0
    episodes: int = 0
    shards: int = 0
    done: bool = False
    seconds: float = 0.0  # time spent in the collection loop (excludes start-up)
    error: str | None = None
    exitcode: int | None = None


@dataclass
class Summary:
    """The result of a collection run."""

    root: str
    env_id: str
    policy: str
    steps: int
    episodes: int
    shards: int
    seconds: float
    returns: list[float] = field(default_factory=list)  # of the most recent episodes the Collector keeps
    lengths: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    interrupted: bool = False
    return_stats: tuple[float, float, float] | None = None  # (sum, min, max) over all episodes
    length_sum: int = 0

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        stats, n = self.return_stats, self.episodes
        return {
            "root": redact(self.root),  # printed by the command: URLs without their credentials
            "env": self.env_id,
            "policy": redact(self.policy),
            "steps": self.steps,
            "episodes": self.episodes,
            "shards": self.shards,
            "seconds": round(self.seconds, 3),
            "steps_per_s": round(self.steps_per_second, 1),
            "return_mean": stats[0] / n if stats and n else None,
            "return_min": stats[1] if stats else None,
            "return_max": stats[2] if stats else None,
            "length_mean": self.length_sum / n if stats and n else None,
            "failed_workers": sorted(self.failed),
            "interrupted": self.interrupted,
        }

    def __str__(self) -> str:
        j = self.to_json()
        ret = "n/a"
        if j["return_mean"] is not None:
            ret = f"{j['return_mean']:.3g} (min {j['return_min']:.3g}, max {j['return_max']:.3g})"
        failed = f", {len(self.failed)} worker(s) FAILED" if self.failed else ""
        stopped = " (stopped early)" if self.interrupted else ""
        return (
            f"collected {self.steps} steps, {self.episodes} episodes in {self.shards} shards to {self.root} "
            f"in {self.seconds:.1f} s ({self.steps_per_second:.0f} steps/s){stopped}; "
            f"episode return {ret}{failed}"
        )
