"""A run stopped (Ctrl-C) or killed (kill -9 of the whole process group) and resumed is one run: its
counters never go back, the loader neither re-reads nor skips shards, and snapshot versions keep growing.

Real online runs (debug preset, one MiniGrid collector worker), a real sqlite MLflow store, run folders on
local disk (typed as a relative path), on the moto S3 server and on the GCS emulator.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from dreamstream.datasets import Dataset
from dreamstream.train.run_folder import read_run_file
from dreamstream.versioned.files import VersionedFiles

SETTINGS = ["--preset", "debug", "--no-progress", "--set", "train.gif_interval=0",
            "--set", "train.snapshot_interval=5", "--set", "train.checkpoint_interval=20"]
COUNTERS = ("data/env_steps", "data/episodes", "data/frames", "data/shards", "snapshot/version", "time/wall_s",
            "run/restarts")
"""Counters of durable state: never lower in a later log, whatever stopped the process before."""
PREFIXES = {"checkpoints": "checkpoint", "snapshots": "policy"}


class RunProcess:
    """`dreamstream train` in its own process group (what a terminal's Ctrl-C or a lost machine hits)."""

    def __init__(self, run: str, cwd: Path, *args: str, typed: str | None = None) -> None:
        self.run = run  # where the test looks; `typed`: the --run argument as a user types it (default: run)
        self.log = cwd / f"train-{time.monotonic_ns()}.log"
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dreamstream.cli", "train", "--env", "minigrid_empty", *SETTINGS,
                 "--run", typed or run, *args], cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def version(self, folder: str) -> int:
        """The version `<run>/<folder>/latest.json` names (-1 before the first)."""
        found = VersionedFiles(f"{self.run}/{folder}", PREFIXES[folder]).latest_version()
        return -1 if found is None else found

    def wait_until(self, condition, what: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.process.poll() is None, f"the trainer exited before {what}:\n{self.log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no {what} within {timeout} s:\n{self.log.read_text()[-3000:]}"
            time.sleep(0.05)

    def stop(self, sig: signal.Signals) -> None:
        os.killpg(self.process.pid, sig)
        code = self.process.wait(timeout=120)
        expected = 0 if sig == signal.SIGINT else -signal.SIGKILL
        assert code == expected, f"exit code {code} after {sig.name}:\n{self.log.read_text()[-3000:]}"

    def finish(self) -> str:
        assert self.process.wait(timeout=300) == 0, self.log.read_text()[-3000:]
        return self.log.read_text()


def ordered(client: MlflowClient, run_id: str, key: str) -> list:
    """A metric's history in the order it was logged."""
    return sorted(client.get_metric_history(run_id, key), key=lambda m: (m.timestamp, m.step))


def non_decreasing(values: list[float]) -> bool:
    return all(a <= b for a, b in zip(values, values[1:], strict=False))


def checkpoint(run: str) -> dict:
    return VersionedFiles(f"{run}/checkpoints", "checkpoint").load()


def assert_loader_read_every_shard_once(state: dict, resumed_from: dict) -> None:
    """Each shard read as new is counted once, every listed shard is read or still pending, and what the
    checkpoint resumed from had read is still read."""
    seen, metrics = set(state["seen"]), state["metrics"]
    assert metrics["follow_new_shards"] == len(seen), "a shard was read as new twice"
    assert len(seen) + metrics["follow_pending_new"] == metrics["follow_known_shards"], "a shard was skipped"
    assert set(resumed_from["seen"]) <= seen


def assert_continuous(tracking_uri: str, run: str, boundaries: list[float], eval_expected: bool) -> None:
    """Every counter is non-decreasing in log order and was logged on both sides of every boundary (the time a
    process was stopped); data and evaluation curves against env steps never step back."""
    client = MlflowClient(tracking_uri)
    run_id = read_run_file(run)["mlflow_run_id"]
    keys = COUNTERS + (("eval/evaluations",) if eval_expected else ())
    for key in keys:
        history = ordered(client, run_id, key)
        assert non_decreasing([m.value for m in history]), (key, [(m.step, m.value) for m in history])
        for boundary in boundaries:
            before = [m.value for m in history if m.timestamp < boundary * 1000]
            after = [m.value for m in history if m.timestamp > boundary * 1000]
            assert before and after, f"{key} was not logged on both sides of a stop"
    assert ordered(client, run_id, "data/env_steps")[0].value > 0
    for m in ordered(client, run_id, "loader/batches"):  # counters of the trained lineage follow its step
        assert m.value == m.step, ("loader/batches", m.step, m.value)
    curves = ["at_env_step/data/episodes"] + (["at_env_step/eval/return"] if eval_expected else [])
    for key in curves:
        history = ordered(client, run_id, key)
        assert len(history) >= 2 and non_decreasing([m.step for m in history]), (key, [m.step for m in history])
    if eval_expected:
        evaluations = ordered(client, run_id, "eval/evaluations")[-1].value  # logged last, after the final one
        assert evaluations == len({r.writer for r in Dataset(f"{run}/eval").records()}) >= 2


def kill_after_a_newer_snapshot(process: RunProcess) -> tuple[int, int]:
    """kill -9 the run once a snapshot newer than the last checkpoint is published; -> (checkpoint, snapshot)."""
    process.wait_until(lambda: process.version("checkpoints") >= 0
                       and process.version("snapshots") >= process.version("checkpoints") + 5,
                       "snapshot newer than the checkpoint")
    process.stop(signal.SIGKILL)
    at = process.version("checkpoints"), process.version("snapshots")
    assert at[1] > at[0], at
    return at


def stop_kill_resume(run: str, cwd: Path, typed: str, first_args: list[str], ready, mlflow_uri: str,
                     evaluated: bool) -> None:
    """Ctrl-C once `ready(process)`, resume, kill -9 after a snapshot newer than the checkpoint, resume to a
    few steps later; then every continuity check."""
    first = RunProcess(run, cwd, *first_args, "--steps", "10000", typed=typed)
    first.wait_until(lambda: ready(first), "the first stop")
    first.stop(signal.SIGINT)
    stopped_step = checkpoint(run)["step"]
    stopped_snapshot = VersionedFiles(f"{run}/snapshots", "policy").latest_version()
    assert stopped_snapshot == stopped_step, "a clean stop publishes the checkpoint's weights"
    boundaries = [time.time()]

    second = RunProcess(run, cwd, "--resume", "--steps", "10000", typed=typed)
    second.wait_until(lambda: second.version("checkpoints") > stopped_step, "a checkpoint after the resume")
    killed_at, killed_snapshot = kill_after_a_newer_snapshot(second)
    boundaries.append(time.time())
    resumed_from = checkpoint(run)

    out = RunProcess(run, cwd, "--resume", "--steps", str(killed_at + 12), "-v", typed=typed).finish()
    assert f"resumed from step {killed_at}" in out
    final = checkpoint(run)
    assert final["step"] == killed_at + 12
    assert_loader_read_every_shard_once(final["loader"], resumed_from["loader"])
    assert_continuous(mlflow_uri, run, boundaries, eval_expected=evaluated)

    versions = ordered(MlflowClient(mlflow_uri), read_run_file(run)["mlflow_run_id"], "snapshot/version")
    after_stop = [m.value for m in versions if boundaries[0] * 1000 < m.timestamp < boundaries[1] * 1000]
    after_kill = [m.value for m in versions if m.timestamp > boundaries[1] * 1000]
    assert min(after_stop) >= stopped_snapshot
    assert min(after_kill) > killed_snapshot, "a resumed run published a version collectors would ignore"
    published = VersionedFiles(f"{run}/snapshots", "policy")
    assert published.latest_version() > killed_snapshot
    assert published.load()["version"] == published.latest_version()


def test_stop_and_kill_then_resume_continue_every_counter(tmp_path, mlflow_uri):
    """Local run folder typed as a relative path, with evaluations; `dreamstream curves` draws the run."""
    typed, run = "runs/continuity", str(tmp_path / "runs" / "continuity")
    evaluated = ["--set", "train.eval_interval=10", "--set", "train.eval_episodes=1"]
    stop_kill_resume(run, tmp_path, typed, evaluated,
                     lambda p: p.version("checkpoints") >= 20 and Dataset(f"{run}/eval").record_names(),
                     mlflow_uri, evaluated=True)

    shown = subprocess.run([sys.executable, "-m", "dreamstream.cli", "curves", "--run", typed, "--out", "curves.png"],
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout.splitlines()
    assert [line.split(":")[0] for line in shown] == ["process 0", "process 1", "process 2", "wrote curves.png"]
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("store", ["s3", "gcs"])
def test_stop_and_kill_then_resume_on_an_object_store_run_folder(store, request, mlflow_uri, tmp_path):
    run = f"{request.getfixturevalue(f'{store}_url')}/runs/continuity"
    stop_kill_resume(run, tmp_path, run, ["--set", "train.eval_interval=0"], lambda p: p.version("snapshots") >= 10,
                     mlflow_uri, evaluated=False)
