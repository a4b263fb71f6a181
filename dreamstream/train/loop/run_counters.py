"""The counters that describe a run, each derived from durable state so that it continues across a stop,
a kill -9 and `--resume` (docs/train.md, "Counters across resumes"):

- env steps, episodes, frames: the commit records of the run's dataset (`CommittedTotals`), whoever wrote
  them: this process's collectors, a killed process's, or collectors on other machines;
- evaluations: the writers of the run's evaluation dataset (each evaluation is one collector, one writer);
- snapshot version: the snapshots' `latest.json` (`next_snapshot_version`): after a kill -9 the last
  published snapshot can be newer than the checkpoint the run resumes from;
- training wall time: the checkpoint's total plus this process's time (`WallClock`), or the last value
  logged to MLflow when that is larger (the time a kill -9 lost after the last checkpoint).

Reading every commit record at every log would cost O(dataset) per log; `CommittedTotals.refresh` lists
the record names (one listing) and reads only the records it has not counted yet, so a log costs one
listing plus the new records, and memory is one name per shard.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from dreamstream.datasets import Dataset
from dreamstream.datasets.errors import StoreError
from dreamstream.datasets.records import INDEX

log = logging.getLogger(__name__)


def frames_per_step(env_config: dict[str, Any]) -> int:
    """Emulator frames per env step of the env a dataset card records: Atari's `frame_skip`, else 1."""
    if env_config.get("kind") == "atari":
        return max(int(env_config.get("frame_skip", 1)), 1)
    return 1


class CommittedTotals:
    """Running totals over a dataset's commit records, read incrementally (each record once)."""

    def __init__(self, url: str) -> None:
        self.dataset = Dataset(url)
        self.steps = 0
        self.episodes = 0  # finished episodes: rows with is_last
        self.writers: set[str] = set()
        self._counted: set[str] = set()
        self._frames_per_step: int | None = None

    @property
    def shards(self) -> int:
        return len(self._counted)

    @property
    def frames(self) -> int:
        """Env steps times the env's frames per step (from the card, read once)."""
        if self._frames_per_step is None:
            self._frames_per_step = frames_per_step(self.dataset.card.env_config)
        return self.steps * self._frames_per_step

    def refresh(self) -> CommittedTotals:
        """Count the records committed since the last refresh. A record the store failed to return is tried
        again next time, as is a failed listing; a malformed record is never counted (the loader skips it too)."""
        try:
            names = self.dataset.record_names()
        except StoreError as exc:
            log.warning("run counters: %s (the totals stay as they were)", exc)
            return self
        new = [name for name in names if name not in self._counted]
        if not new:
            return self
        records, errors = self.dataset.read_records(new)
        retry = {exc.shard for exc in errors if isinstance(exc, StoreError)}
        for exc in errors:
            log.warning("run counters: %s", exc)
        for record in records:
            self.steps += record.steps
            self.episodes += sum(row.is_last for row in record.samples)
            self.writers.add(record.writer)
        self._counted.update(name for name in new if f"{INDEX}/{name}.json" not in retry)
        return self


def next_snapshot_version(step: int, last_published: int | None) -> int:
    """The version of a snapshot published at gradient step `step`: the step itself, or one more than the last
    published version when that is not below it (a run resumed after a kill -9 re-trains steps whose
    snapshots were published already); collectors adopt only versions newer than the one they act with."""
    return step if last_published is None or step > last_published else last_published + 1


class WallClock:
    """Seconds trainer processes spent on this run: `base` (earlier processes) plus this process's."""

    def __init__(self, base: float = 0.0) -> None:
        self.base = base
        self.started = time.monotonic()

    def total(self) -> float:
        return self.base + time.monotonic() - self.started
