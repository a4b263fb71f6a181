"""Collector: the parent of N spawned worker processes, each running env(s) + a policy + its own shard writer.

    collector = Collector(env_config, "s3://bucket/pong", collect=CollectConfig(workers=4, steps=100_000))
    summary = collector.run()            # blocking: progress, signals, summary (the CLI uses this)

    collector.start()                    # or drive it yourself (the online trainer does):
    episodes = collector.poll()          # new finished episodes since the last poll (non-blocking)
    collector.stop()                     # commit what is complete, join the workers

Workers are spawned (never forked: s3fs/gcsfs are not fork-safe). Each worker talks to the parent over
its own pipe (dreamstream.collect.protocol), so a worker killed mid-message damages nothing but its own
channel. Stopping (stop(), SIGINT or SIGTERM to the parent, SIGTERM to a worker) makes a worker leave its
writer's context, which commits every complete row, open episodes as partial chunks. A worker that
raises reports its traceback; the others keep running and keep what they committed.

Counting: a *step* is a row of the dataset (a reset observation is a row too); `steps` and
`episodes` budgets are split evenly over the workers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import multiprocessing.connection
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dreamstream.collect.config import CollectConfig, EnvConfig
from dreamstream.collect.protocol import Done, Failed, Message, Report, WorkerTask
from dreamstream.collect.results import Episode, Summary, WorkerState
from dreamstream.collect.worker import worker_main
from dreamstream.datasets.shares import even_shares
from dreamstream.datasets.writer import WriterConfig
from dreamstream.errors import UserError
from dreamstream.redact import redact

if TYPE_CHECKING:
    from dreamstream.collect.progress import MlflowLogger

log = logging.getLogger(__name__)

EPISODE_MEMORY = 10_000  # finished episodes the parent keeps (Collector.episodes); totals count all


class Collector:
    """Runs `collect.workers` worker processes writing one dataset at `root` (see the module docstring)."""

    def __init__(
        self,
        env: EnvConfig,
        root: str,
        collect: CollectConfig | None = None,
        writer: WriterConfig | None = None,
        *,
        policy: str | None = None,
        preset: str = "",
        description: str = "",
        storage_options: dict[str, Any] | None = None,
    ):
        from dreamstream.collect.envs import resolve

        self.collect = dataclasses.replace(collect or CollectConfig())
        if policy is not None:
            self.collect.policy = policy
        if self.collect.workers < 1 or self.collect.envs_per_worker < 1:
            raise UserError(f"collect.workers and collect.envs_per_worker must be >= 1, got {self.collect}")
        for name in ("steps", "episodes"):
            value = getattr(self.collect, name)
            if value is not None and value < 1:
                raise UserError(f"collect.{name} must be >= 1 (or unset), got {value}")
        self.env = resolve(env)
        if self.collect.policy == "expert":
            if self.env.kind != "minigrid":
                raise UserError(f"the expert policy is for MiniGrid envs; {self.env.id} is a {self.env.kind} env")
            if not self.env.map:
                log.info("the expert policy reads the full grid: turning on env.map")
                self.env = dataclasses.replace(self.env, map=True)
        self.writer = writer or WriterConfig()
        self.root = root.rstrip("/") if "://" in root else root
        self.preset = preset
        self.description = description
        self.storage_options = storage_options
        self.workers: dict[int, WorkerState] = {}
        self._processes: dict[int, Any] = {}
        self._conns: dict[int, Any] = {}
        self._stop_event = None
        self._budget = None
        self._allowed_steps = -1
        self._started = 0.0
        self._stopping = False
        self.episodes: deque[Episode] = deque(maxlen=EPISODE_MEMORY)  # the most recent finished episodes
        self._return_stats: tuple[float, float, float] | None = None
        self._length_sum = 0
        self.card = None

    # -- setup ------------------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Build the env once, check the policy, and write (or check) the dataset card: every error that the
        user can fix surfaces here, before any worker starts and before any shard is written."""
        from dreamstream.collect.envs import make_env
        from dreamstream.collect.policies import make_policy
        from dreamstream.datasets import DatasetCard, DatasetError
        from dreamstream.datasets.card import ensure_card
        from dreamstream.datasets.storage import open_fs

        env = make_env(self.env)
        try:
            spec = env.episode_spec
            env.reset(seed=self.collect.seed)
        finally:
            env.close()
        make_policy(self.collect.policy, spec, self.collect, seed=0, storage_options=self.storage_options)
        card = DatasetCard.create(
            spec, env_id=self.env.id, preset=self.preset, env_config=dataclasses.asdict(self.env),
            description=redact(self.description or f"collected by dreamstream collect with policy "
                               f"{self.collect.policy}"),
        )
        try:
            fs, path = open_fs(self.root, self.storage_options)
            self.card = ensure_card(fs, path, card, url=self.root)
        except DatasetError as exc:
            raise UserError(f"cannot collect into {self.root}: {exc}") from exc
        except (OSError, ValueError, ImportError) as exc:
            raise UserError(f"cannot write to {self.root}: {type(exc).__name__}: {exc}") from exc

    def start(self) -> None:
        """Prepare (if not done) and spawn the workers; returns at once."""
        if self.card is None:
            self.prepare()
        ctx = multiprocessing.get_context("spawn")
        self._stop_event = ctx.Event()
        self._budget = ctx.Value("q", self._allowed_steps, lock=False)
        self._started = time.monotonic()
        n = self.collect.workers
        # each worker's share of the budgets (an unset budget stays unset)
        steps, episodes = ([None] * n if total is None else even_shares(total, n)
                           for total in (self.collect.steps, self.collect.episodes))
        for index in range(n):
            task = WorkerTask(
                index=index, root=self.root, card=self.card, env=self.env, collect=self.collect,
                writer=self.writer, policy=self.collect.policy, steps=steps[index], episodes=episodes[index],
                storage_options=self.storage_options, log_level=logging.getLogger().getEffectiveLevel(),
                workers=n,
            )
            self.workers[index] = WorkerState(index)
            if task.steps == 0 or task.episodes == 0:
                self.workers[index].done = True
                continue
            reader, writer = ctx.Pipe(duplex=False)
            process = ctx.Process(target=worker_main, args=(task, writer, self._stop_event, self._budget),
                                  name=f"dreamstream-collect-{index}", daemon=False)
            process.start()
            writer.close()
            self._processes[index] = process
            self._conns[index] = reader
        log.info("collecting %s with policy %s: %d worker(s) -> %s", self.env.id, self.collect.policy, n, self.root)

    # -- running --------------------------------------------------------------------------------------

    def allow_steps(self, total: int) -> None:
        """Let the workers take `total` env steps in all (-1: no limit); they wait once they reach it.

        The online trainer raises it with every gradient step, which keeps a fixed ratio of env steps to
        gradient steps instead of letting collectors take the cores the learner needs."""
        self._allowed_steps = total
        if self._budget is not None:
            self._budget.value = total

    @property
    def running(self) -> bool:
        return any(p.is_alive() for p in self._processes.values()) or bool(self._conns)

    def poll(self, timeout: float = 0.0) -> list[Episode]:
        """Handle worker messages and exits (waiting up to `timeout` s for one); -> new finished episodes."""
        new: list[Episode] = []
        waitables = list(self._conns.values())
        if not waitables:
            return new
        ready = multiprocessing.connection.wait(waitables, timeout=timeout)
        for index, conn in list(self._conns.items()):
            if conn not in ready:
                continue
            try:
                while conn.poll():
                    new.extend(self._handle(conn.recv()))
            except (EOFError, OSError, ValueError) as exc:  # worker gone (maybe mid-message)
                self._finish(index, exc)
        return new

    def _handle(self, message: Message) -> list[Episode]:
        state = self.workers[message.worker]
        if isinstance(message, Report):
            state.steps += message.rows
            state.shards = message.shards
            state.episodes += len(message.episodes)
            self.episodes.extend(message.episodes)
            for episode in message.episodes:
                total, low, high = self._return_stats or (0.0, episode.ret, episode.ret)
                self._return_stats = (total + episode.ret, min(low, episode.ret), max(high, episode.ret))
                self._length_sum += episode.length
            return message.episodes
        if isinstance(message, Done):
            state.shards, state.done, state.seconds = message.shards, True, message.seconds
        elif isinstance(message, Failed):
            state.error = message.message if message.user_error else message.traceback
            if message.user_error:
                log.error("worker %d stopped: %s", state.index, message.message)
            else:
                log.error("worker %d crashed (the other workers go on):\n%s", state.index, message.traceback.rstrip())
        return []

    def _finish(self, index: int, exc: BaseException | None = None) -> None:
        """A worker's pipe closed: join it and record how it ended."""
        conn = self._conns.pop(index)
        conn.close()
        process = self._processes[index]
        process.join(timeout=30)
        state = self.workers[index]
        state.exitcode = process.exitcode
        if not state.done and state.error is None:
            how = f"signal {-process.exitcode}" if (process.exitcode or 0) < 0 else f"exit code {process.exitcode}"
            state.error = f"worker {index} died ({how}) without reporting; its committed shards are intact"
            log.error("%s", state.error)

    def request_stop(self) -> None:
        """Ask every worker to commit what is complete and exit (returns at once)."""
        if self._stop_event is not None and not self._stopping:
            self._stopping = True
            self._stop_event.set()

    def stop(self, timeout: float = 60.0) -> Summary:
        """Stop the workers (commit, exit), wait for them, and summarise; kills stragglers after `timeout`."""
        self.request_stop()
        return self.wait(timeout)

    def wait(self, timeout: float | None = None) -> Summary:
        """Wait until every worker has ended (budget reached or stopped); -> the summary."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._conns:
            self.poll(timeout=0.2)
            if deadline is not None and time.monotonic() > deadline:
                for index, process in self._processes.items():
                    if process.is_alive():
                        log.error("worker %d did not stop within %.0f s: terminating it", index, timeout)
                        process.kill()
                deadline = None
        return self.summary()

    def counts(self) -> tuple[int, int, int]:
        """(steps, episodes, shards) reported so far by all workers."""
        states = self.workers.values()
        return sum(s.steps for s in states), sum(s.episodes for s in states), sum(s.shards for s in states)

    def summary(self) -> Summary:
        failed = {i: s.error for i, s in self.workers.items() if s.error}
        return Summary(
            root=self.root, env_id=self.env.id, policy=self.collect.policy,
            steps=sum(s.steps for s in self.workers.values()),
            episodes=sum(s.episodes for s in self.workers.values()),
            shards=sum(s.shards for s in self.workers.values()),
            seconds=time.monotonic() - self._started if self._started else 0.0,
            returns=[e.ret for e in self.episodes], lengths=[e.length for e in self.episodes],
            failed=failed, interrupted=self._stopping, return_stats=self._return_stats, length_sum=self._length_sum,
        )

    def run(self, progress: bool | None = None, mlflow_logger: MlflowLogger | None = None) -> Summary:
        """Start, show progress until the budget is reached or a signal arrives, stop, and summarise.

        SIGINT/SIGTERM make the workers commit and exit; a second signal kills them.
        """
        from dreamstream.collect.progress import Progress

        bar = Progress(self, enabled=progress, log_seconds=self.collect.log_seconds)
        try:
            with self._stop_on_signals():
                self.start()
                while self._conns:
                    episodes = self.poll(timeout=0.25)
                    bar.update(episodes)
                    if mlflow_logger is not None:
                        mlflow_logger.update(self, episodes)
                summary = self.summary()
        finally:
            bar.close()
            if self._conns:  # an exception in the parent: stop the workers cleanly
                self.stop(timeout=30)
        if mlflow_logger is not None:
            mlflow_logger.finish(summary)
        return summary

    @contextlib.contextmanager
    def _stop_on_signals(self) -> Iterator[None]:
        """While inside: the first SIGINT/SIGTERM asks the workers to stop, a second kills them.

        Only the main thread can set signal handlers; elsewhere (a trainer's thread) nothing changes."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if self._stopping:
                log.warning("second signal: killing the workers")
                for process in self._processes.values():
                    if process.is_alive():
                        process.kill()
            else:
                log.info("signal %d: committing what is complete and stopping", signum)
                self.request_stop()

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def __enter__(self) -> Collector:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._conns:
            self.stop()
