"""Collector: N spawned worker processes, each running env(s) + a policy + its own shard writer.

    collector = Collector(env_config, "s3://bucket/pong", collect=CollectConfig(workers=4, steps=100_000))
    summary = collector.run()            # blocking: progress, signals, summary (the CLI uses this)

    collector.start()                    # or drive it yourself (the online trainer does):
    episodes = collector.poll()          # new finished episodes since the last poll (non-blocking)
    collector.stop()                     # commit what is complete, join the workers

Workers are spawned (never forked: s3fs/gcsfs are not fork-safe). Each worker talks to the parent over
its own pipe, so a worker killed mid-message damages nothing but its own channel. Stopping (stop(),
SIGINT or SIGTERM to the parent, SIGTERM to a worker) makes a worker leave its writer's context, which
commits every complete row, open episodes as partial chunks. A worker that raises reports its
traceback; the others keep running and keep what they committed.

Counting: a *step* is a row of the dataset (a reset observation is a row too); `steps` and
`episodes` budgets are split evenly over the workers.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dreamstream.collect.config import CollectConfig, EnvConfig
from dreamstream.datasets.writer import WriterConfig
from dreamstream.errors import UserError
from dreamstream.redact import redact, redact_logs

log = logging.getLogger(__name__)

PROGRESS_SECONDS = 0.5  # how often a worker reports to the parent
EPISODE_MEMORY = 10_000  # finished episodes the parent keeps (Collector.episodes); totals count all
STOP_CHECK_ROWS = 64  # how often (in rows) a worker looks at the shared stop event


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
    returns: list[float] = field(default_factory=list)  # of the most recent EPISODE_MEMORY episodes
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


# -- the loop every worker runs (and the benchmark, in-process) ----------------------------------------


def zero_action(env) -> np.ndarray:
    space = env.action_space
    if hasattr(space, "n"):
        return np.zeros((), np.int64)
    return np.zeros(space.shape, np.float32)


def make_row(obs: dict[str, np.ndarray], action, reward: float, first: bool, last: bool, terminal: bool) -> dict:
    row = dict(obs)
    row["action"] = action
    row["reward"] = np.float32(reward)
    row["is_first"] = np.bool_(first)
    row["is_last"] = np.bool_(last)
    row["is_terminal"] = np.bool_(terminal)
    return row


def collect_loop(
    envs: list,
    policy,
    add_step: Callable[..., None],
    seeds: list[int | None],
    max_steps: int | None = None,
    max_episodes: int | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_episode: Callable[[float, int, bool, str, int], None] | None = None,
    on_rows: Callable[[int], None] | None = None,
    throttle: Callable[[int], None] | None = None,
) -> tuple[int, int]:
    """Step `envs` with `policy`, handing every row to `add_step(row, slot, policy, version)`.

    Returns (rows, episodes). Stops at `max_steps` rows, `max_episodes` finished episodes, or when
    `should_stop()` (checked every STOP_CHECK_ROWS rows) says so; the caller's writer seals what is open.
    `throttle(rows)`, called at the same checks, may block to hold collection back (online training).
    """
    n = len(envs)
    uses_obs = getattr(policy, "uses_observations", True)
    zeros = [zero_action(env) for env in envs]
    returns = [0.0] * n
    lengths = [0] * n
    rows_total = episodes = 0
    next_check = STOP_CHECK_ROWS
    policy.reset(n)
    current = []
    for i, env in enumerate(envs):
        obs, _ = env.reset(seed=seeds[i])
        current.append(make_row(obs, zeros[i], 0.0, True, False, False))
    while True:
        name, version = policy.name, policy.version
        stop = False
        for i in range(n):
            row = current[i]
            add_step(row, i, name, version)
            rows_total += 1
            lengths[i] += 1
            returns[i] += float(row["reward"])
            if row["is_last"]:
                episodes += 1
                if on_episode is not None:
                    on_episode(returns[i], lengths[i], bool(row["is_terminal"]), name, version)
                returns[i], lengths[i] = 0.0, 0
                if max_episodes is not None and episodes >= max_episodes:
                    stop = True
                    break
                obs, _ = envs[i].reset()
                current[i] = row = make_row(obs, zeros[i], 0.0, True, False, False)
                add_step(row, i, name, version)
                rows_total += 1
                lengths[i] += 1
            if max_steps is not None and rows_total >= max_steps:
                stop = True
                break
        if rows_total >= next_check:
            next_check = rows_total + STOP_CHECK_ROWS
            if on_rows is not None:
                on_rows(rows_total)
            stop = stop or should_stop()
            if throttle is not None and not stop:
                throttle(rows_total)
        if stop:
            if on_rows is not None:
                on_rows(rows_total)
            return rows_total, episodes
        if uses_obs:
            batch = {key: np.stack([r[key] for r in current]) for key in current[0]}
        else:
            batch = {"is_first": np.array([bool(r["is_first"]) for r in current])}
        actions = policy.act(batch)
        for i in range(n):
            obs, reward, terminated, truncated, _ = envs[i].step(actions[i])
            current[i] = make_row(obs, actions[i], reward, False, terminated or truncated, terminated)


# -- worker process --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerTask:
    """Everything a spawned worker needs (picklable)."""

    index: int
    root: str
    card: Any  # DatasetCard
    env: EnvConfig
    collect: CollectConfig
    writer: WriterConfig
    policy: str
    steps: int | None
    episodes: int | None
    storage_options: dict[str, Any] | None = None
    log_level: int = logging.INFO
    workers: int = 1


def _worker_main(task: WorkerTask, conn, stop_event, budget) -> None:
    """Entry point of a worker process: never raises; reports progress, the end or a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent coordinates Ctrl-C (it reaches the whole group)
    terminated = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: terminated.set())
    logging.basicConfig(level=task.log_level,
                        format=f"%(asctime)s %(levelname)s worker{task.index} %(name)s: %(message)s")
    redact_logs()
    pending: list[tuple] = []
    last_sent = [time.monotonic(), 0]
    shards = [0]

    def send(message: tuple) -> None:
        try:
            conn.send(message)
        except (BrokenPipeError, EOFError, OSError):
            pass  # the parent is gone; keep committing what we can

    def flush(rows: int) -> None:
        send(("progress", task.index, rows - last_sent[1], pending[:], shards[0]))
        pending.clear()
        last_sent[0], last_sent[1] = time.monotonic(), rows

    def on_rows(rows: int) -> None:
        if time.monotonic() - last_sent[0] >= PROGRESS_SECONDS:
            flush(rows)

    def on_episode(ret: float, length: int, terminal: bool, name: str, version: int) -> None:
        pending.append((ret, length, terminal, name, version))

    rows = 0
    started = time.monotonic()
    try:
        from dreamstream.collect.envs import make_env
        from dreamstream.collect.policies import make_policy
        from dreamstream.datasets.writer import EpisodeWriter

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
                shards[0] = len(writer.committed) - committed_before
                return terminated.is_set() or stop_event.is_set()

            def throttle(rows: int) -> None:
                # budget: env steps all workers may have taken (-1: no limit); this worker takes its share.
                while 0 <= budget.value <= rows * task.workers and not should_stop():
                    writer.commit_if_due()  # data already collected still reaches the trainer on time
                    on_rows(rows)
                    time.sleep(0.05)

            loop_start = time.monotonic()
            rows, episodes = collect_loop(
                envs, policy, add_step, [seed + e for e in range(n_envs)],
                max_steps=task.steps, max_episodes=task.episodes, should_stop=should_stop,
                on_episode=on_episode, on_rows=on_rows, throttle=throttle,
            )
        shards[0] = len(writer.committed) - committed_before
        flush(rows)
        loop_seconds = time.monotonic() - loop_start
        log.debug("worker %d: %d rows, %d episodes in %.2f s (%.0f steps/s; ready after %.2f s), %d shards",
                  task.index, rows, episodes, loop_seconds, rows / max(loop_seconds, 1e-9), loop_start - started,
                  shards[0])
        send(("done", task.index, shards[0], terminated.is_set() or stop_event.is_set(), loop_seconds))
    except BaseException as exc:  # noqa: BLE001 - report everything, including KeyboardInterrupt
        flush(rows)
        kind = "user" if isinstance(exc, UserError) else "crash"
        send(("error", task.index, kind, str(exc), traceback.format_exc()))
        _exit_now(conn, 1)
    _exit_now(conn, 0)


def _exit_now(conn, code: int) -> None:
    """Leave without interpreter teardown (torch's takes about a second): everything is committed already."""
    conn.close()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# -- parent side -----------------------------------------------------------------------------------------


def split(total: int | None, parts: int, index: int) -> int | None:
    """Worker `index`'s share of a budget split over `parts` workers (None stays None)."""
    if total is None:
        return None
    return total // parts + (1 if index < total % parts else 0)


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
        for index in range(n):
            task = WorkerTask(
                index=index, root=self.root, card=self.card, env=self.env, collect=self.collect,
                writer=self.writer, policy=self.collect.policy,
                steps=split(self.collect.steps, n, index), episodes=split(self.collect.episodes, n, index),
                storage_options=self.storage_options, log_level=logging.getLogger().getEffectiveLevel(),
                workers=n,
            )
            self.workers[index] = WorkerState(index)
            if task.steps == 0 or task.episodes == 0:
                self.workers[index].done = True
                continue
            reader, writer = ctx.Pipe(duplex=False)
            process = ctx.Process(target=_worker_main, args=(task, writer, self._stop_event, self._budget),
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

    def _handle(self, message: tuple) -> list[Episode]:
        kind, index = message[0], message[1]
        state = self.workers[index]
        if kind == "progress":
            _, _, rows, episodes, shards = message
            state.steps += rows
            state.shards = shards
            out = [Episode(index, *e) for e in episodes]
            state.episodes += len(out)
            self.episodes.extend(out)
            for episode in out:
                total, low, high = self._return_stats or (0.0, episode.ret, episode.ret)
                self._return_stats = (total + episode.ret, min(low, episode.ret), max(high, episode.ret))
                self._length_sum += episode.length
            return out
        if kind == "done":
            state.shards, state.done, state.seconds = message[2], True, message[4]
        elif kind == "error":
            _, _, err_kind, text, tb = message
            state.error = text if err_kind == "user" else tb
            if err_kind == "user":
                log.error("worker %d stopped: %s", index, text)
            else:
                log.error("worker %d crashed (the other workers go on):\n%s", index, tb.rstrip())
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

    def run(self, progress: bool | None = None, mlflow_logger=None) -> Summary:
        """Start, show progress until the budget is reached or a signal arrives, stop, and summarise.

        SIGINT/SIGTERM make the workers commit and exit; a second signal kills them.
        """
        from dreamstream.collect.progress import Progress

        signals = (signal.SIGINT, signal.SIGTERM)
        previous = {}
        in_main = threading.current_thread() is threading.main_thread()
        if in_main:
            def handler(signum, frame):
                if self._stopping:
                    log.warning("second signal: killing the workers")
                    for process in self._processes.values():
                        if process.is_alive():
                            process.kill()
                else:
                    log.info("signal %d: committing what is complete and stopping", signum)
                    self.request_stop()

            for sig in signals:
                previous[sig] = signal.signal(sig, handler)
        bar = Progress(self, enabled=progress, log_seconds=self.collect.log_seconds)
        try:
            self.start()
            while self._conns:
                episodes = self.poll(timeout=0.25)
                bar.update(episodes)
                if mlflow_logger is not None:
                    mlflow_logger.update(self, episodes)
            summary = self.summary()
        finally:
            bar.close()
            if in_main:
                for sig, old in previous.items():
                    signal.signal(sig, old)
            if self._conns:  # an exception in the parent: stop the workers cleanly
                self.stop(timeout=30)
        if mlflow_logger is not None:
            mlflow_logger.finish(summary)
        return summary

    def __enter__(self) -> Collector:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._conns:
            self.stop()
