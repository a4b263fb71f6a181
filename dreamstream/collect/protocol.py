"""What passes between the Collector (parent) and a worker process: the whole protocol, in one place.

A worker is spawned with `worker_main(task, conn, stop_event, budget)` (dreamstream.collect.worker):

- `task`: a WorkerTask, everything the worker needs to build its envs, policy and writer;
- `conn`: the sending end of a one-way pipe of its own, on which it sends Message objects;
- `stop_event`: shared by all workers; once set, each commits what is complete and ends;
- `budget`: a shared signed integer, the env steps all workers together may take (-1: no limit); a
  worker at its share waits for it to grow (Collector.allow_steps).

Messages, in the order a worker sends them: a Report at most every PROGRESS_SECONDS while it collects
(and one last Report when it stops), then exactly one of Done or Failed. A worker that dies without
either (killed, out of memory) shows as its pipe closing. The messages are pickled by the pipe: they
travel only between our own processes and are not the data path (that is the shards).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from dreamstream.collect.config import CollectConfig, EnvConfig
from dreamstream.collect.results import Episode
from dreamstream.datasets.card import DatasetCard
from dreamstream.datasets.writer import WriterConfig

PROGRESS_SECONDS = 0.5  # how often a worker reports to the parent


@dataclass(frozen=True)
class WorkerTask:
    """Everything a spawned worker needs: its share of the budgets and the run's settings."""

    index: int
    root: str
    card: DatasetCard
    env: EnvConfig
    collect: CollectConfig
    writer: WriterConfig
    policy: str
    steps: int | None  # this worker's share of collect.steps
    episodes: int | None  # this worker's share of collect.episodes
    storage_options: dict[str, Any] | None = None
    log_level: int = logging.INFO
    workers: int = 1  # how many workers share the step budget


@dataclass(frozen=True)
class Report:
    """Progress since the worker's previous Report."""

    worker: int
    rows: int  # rows written since the previous Report
    episodes: list[Episode]  # episodes finished since the previous Report
    shards: int  # shards committed so far in all


@dataclass(frozen=True)
class Done:
    """The worker reached its budget or was stopped, and committed everything."""

    worker: int
    shards: int  # shards committed in all
    seconds: float  # time spent in the collection loop (start-up excluded)


@dataclass(frozen=True)
class Failed:
    """The worker raised; its writer committed what was complete."""

    worker: int
    user_error: bool  # a UserError (a cause the user can fix: `message` says it all) or a crash
    message: str
    traceback: str


Message = Report | Done | Failed
