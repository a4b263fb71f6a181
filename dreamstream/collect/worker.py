"""A collector worker process: its envs, its policy and its own shard writer, reporting over its pipe.

The parent (dreamstream.collect.collector) spawns `worker_main`; what it sends and receives is in
dreamstream.collect.protocol. Leaving the writer's context, on any ending, commits every complete row.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from typing import Any

from dreamstream.collect.loop import collect_loop
from dreamstream.collect.protocol import PROGRESS_SECONDS, Done, Failed, Message, Report, WorkerTask
from dreamstream.collect.results import Episode
from dreamstream.errors import UserError
from dreamstream.redact import redact_logs

log = logging.getLogger(__name__)


class _Reporter:
    """The worker's end of the pipe: finished episodes and rows batched into one Report per PROGRESS_SECONDS."""

    def __init__(self, index: int, conn: Connection) -> None:
        self.index, self.conn = index, conn
        self.shards = 0  # committed by this worker so far
        self._rows = 0  # rows collected so far (as the loop last said)
        self._episodes: list[Episode] = []
        self._sent_at, self._sent_rows = time.monotonic(), 0

    def send(self, message: Message) -> None:
        try:
            self.conn.send(message)
        except (BrokenPipeError, EOFError, OSError):
            pass  # the parent is gone; keep committing what we can

    def episode(self, ret: float, length: int, terminal: bool, policy: str, version: int) -> None:
        self._episodes.append(Episode(self.index, ret, length, terminal, policy, version))

    def rows(self, rows: int) -> None:
        self._rows = rows
        if time.monotonic() - self._sent_at >= PROGRESS_SECONDS:
            self.flush()

    def flush(self) -> None:
        self.send(Report(self.index, self._rows - self._sent_rows, self._episodes, self.shards))
        self._episodes = []
        self._sent_at, self._sent_rows = time.monotonic(), self._rows


def worker_main(task: WorkerTask, conn: Connection, stop_event: Event, budget: Any) -> None:
    """Entry point of a worker process: never raises; sends Reports, then Done or Failed (see protocol).

    `budget` is the shared signed integer of protocol.py (a multiprocessing Value, read as `budget.value`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent coordinates Ctrl-C (it reaches the whole group)
    terminated = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: terminated.set())
    logging.basicConfig(level=task.log_level,
                        format=f"%(asctime)s %(levelname)s worker{task.index} %(name)s: %(message)s")
    redact_logs()
    reporter = _Reporter(task.index, conn)
    parent = os.getppid()

    def stopping() -> bool:
        # A parent killed with SIGKILL sends no stop: an orphan (reparented) commits and ends, instead of
        # waiting forever for a step budget that nobody will raise.
        return terminated.is_set() or stop_event.is_set() or os.getppid() != parent

    try:
        seconds = _collect(task, reporter, stopping, budget)
        reporter.send(Done(task.index, reporter.shards, seconds))
    except BaseException as exc:  # noqa: BLE001 - report everything, including KeyboardInterrupt
        reporter.flush()
        reporter.send(Failed(task.index, isinstance(exc, UserError), str(exc), traceback.format_exc()))
        _exit_now(conn, 1)
    _exit_now(conn, 0)


def _collect(task: WorkerTask, reporter: _Reporter, stopping: Callable[[], bool], budget: Any) -> float:
    """Build the envs, policy and writer, run the loop to the end, commit; -> seconds spent in the loop."""
    from dreamstream.collect.envs import make_env
    from dreamstream.collect.policies import make_policy
    from dreamstream.datasets.writer import EpisodeWriter

    started = time.monotonic()
    n_envs = task.collect.envs_per_worker
    envs = [make_env(task.env) for _ in range(n_envs)]
    seed = task.collect.seed + 1000 * task.index
    policy = make_policy(task.policy, envs[0].episode_spec, task.collect, seed=seed,
                         storage_options=task.storage_options)
    if task.policy not in ("random", "expert"):  # a snapshot: torch acts in this process
        try:
            import torch

            torch.set_num_threads(1)  # one core per worker; the parent spawned one worker per core
        except ImportError:
            pass
    with EpisodeWriter(task.root, task.card, config=task.writer, storage_options=task.storage_options) as writer:
        committed_before = len(writer.committed)

        def add_step(row, slot, name, version):
            writer.add_step(row, slot=slot, policy=name, policy_version=version)

        def should_stop() -> bool:
            reporter.shards = len(writer.committed) - committed_before
            return stopping()

        def throttle(rows: int) -> None:
            # budget: env steps all workers may take (-1: no limit); this worker takes its share.
            while 0 <= budget.value <= rows * task.workers and not should_stop():
                writer.commit_if_due()  # data already collected still reaches the trainer on time
                reporter.rows(rows)
                time.sleep(0.05)

        loop_start = time.monotonic()
        rows, episodes = collect_loop(
            envs, policy, add_step, [seed + e for e in range(n_envs)],
            max_steps=task.steps, max_episodes=task.episodes, should_stop=should_stop,
            on_episode=reporter.episode, on_rows=reporter.rows, throttle=throttle,
        )
    reporter.shards = len(writer.committed) - committed_before
    reporter.flush()
    loop_seconds = time.monotonic() - loop_start
    log.debug("worker %d: %d rows, %d episodes in %.2f s (%.0f steps/s; ready after %.2f s), %d shards",
              task.index, rows, episodes, loop_seconds, rows / max(loop_seconds, 1e-9), loop_start - started,
              reporter.shards)
    return loop_seconds


def _exit_now(conn: Connection, code: int) -> None:
    """Leave without interpreter teardown (torch's takes about a second): everything is committed already."""
    conn.close()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
