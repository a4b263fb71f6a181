"""The trainer end to end, through the real command line with the debug preset: offline, online, resume."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

from mlflow.tracking import MlflowClient

from dreamstream.datasets import Dataset

DEBUG = ["--preset", "debug", "--no-progress", "--set", "train.gif_interval=0"]


def mlflow_run(run_dir, tracking_uri):
    run_id = json.loads((run_dir / "run.json").read_text())["mlflow_run_id"]
    return MlflowClient(tracking_uri).get_run(run_id)


def test_offline_starts_no_collector_and_leaves_the_corpus_untouched(minigrid_data, run_dir, mlflow_uri, dreamstream):
    before = [r.name for r in Dataset(minigrid_data).records()]
    out = dreamstream("train", "--env", "minigrid_empty", *DEBUG, "--offline", "--data", minigrid_data,
                      "--run", str(run_dir), "--steps", "10", "--set", "train.eval_interval=0", "-v")
    assert "trained to gradient step 10 on" in out.stdout
    assert "collecting" not in out.stderr, "offline training must not start a collector"
    assert [r.name for r in Dataset(minigrid_data).records()] == before
    assert not (run_dir / "data").exists() and not (run_dir / "eval").exists()
    run = mlflow_run(run_dir, mlflow_uri)
    assert run.data.params["train.offline"] == "True"
    history = MlflowClient(mlflow_uri).get_metric_history(run.info.run_id, "loss/model")
    assert [m.step for m in history] == [5, 10]


def test_online_run_collects_with_published_snapshots_and_evaluates_separately(run_dir, mlflow_uri, dreamstream):
    # GIFs on (every 10 steps in the debug preset): the run must hold them as artifacts.
    out = dreamstream("train", "--env", "minigrid_empty", "--preset", "debug", "--no-progress", "--run",
                      str(run_dir), "--steps", "20")
    result = out.stdout.strip().splitlines()[-5:]  # what the run prints last: its result
    assert result[0].startswith("trained to gradient step 20 on ") and " env steps (" in result[0]
    assert re.fullmatch(r"final evaluation \(\d+ episodes\): success [01]\.\d\d, return \S+, length \S+", result[1])
    assert result[2] == f"run folder:   {run_dir}" and result[3].startswith(f"MLflow store: {mlflow_uri} (run ")
    assert result[4] == f"MLflow UI:    .venv/bin/mlflow ui --backend-store-uri {mlflow_uri}"
    train_rows = [row for r in Dataset(str(run_dir / "data")).records() for row in r.samples]
    versions = {(row.policy, row.policy_version) for row in train_rows}
    assert ("random", 0) in versions, "prefill acts randomly until the first snapshot"
    assert any(p == "dreamer" and v > 0 for p, v in versions), f"collectors never loaded a trained snapshot: {versions}"

    eval_records = Dataset(str(run_dir / "eval")).records()
    assert eval_records, "evaluation episodes go to <run>/eval"
    assert {row.policy for r in eval_records for row in r.samples} == {"dreamer"}
    train_writers = {r.writer for r in Dataset(str(run_dir / "data")).records()}
    assert train_writers.isdisjoint({r.writer for r in eval_records})

    run = mlflow_run(run_dir, mlflow_uri)
    metrics = run.data.metrics
    for key in ("loss/model", "loss/actor", "loss/critic", "loss/kl", "entropy/policy", "eval/return",
                "eval/success", "data/env_steps", "perf/grad_steps_per_s"):
        assert key in metrics, key
    assert run.info.status == "FINISHED"
    gifs = [a.path for a in MlflowClient(mlflow_uri).list_artifacts(run.info.run_id, "dreams")]
    assert gifs == ["dreams/dream-000000010.gif", "dreams/dream-000000020.gif"]


def test_resume_after_sigkill_continues_from_the_last_checkpoint(minigrid_data, run_dir, mlflow_uri, dreamstream):
    args = ["train", "--env", "minigrid_empty", *DEBUG, "--offline", "--data", minigrid_data, "--run", str(run_dir),
            "--set", "train.eval_interval=0", "--set", "train.checkpoint_interval=4"]
    process = subprocess.Popen([sys.executable, "-m", "dreamstream.cli", *args, "--steps", "10000"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pointer = run_dir / "checkpoints" / "latest.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if pointer.exists() and json.loads(pointer.read_text())["version"] >= 8:
            break
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = json.loads(pointer.read_text())["version"]
    assert killed_at >= 8 and killed_at % 4 == 0

    out = dreamstream(*args, "--resume", "--steps", str(killed_at + 6), "-v")
    assert f"resumed from step {killed_at}" in out.stderr
    assert f"trained to gradient step {killed_at + 6} on" in out.stdout
    assert json.loads(pointer.read_text())["version"] == killed_at + 6
    run = mlflow_run(run_dir, mlflow_uri)  # the same MLflow run continues
    assert run.info.status == "FINISHED"
    history = MlflowClient(mlflow_uri).get_metric_history(run.info.run_id, "loss/model")
    assert max(m.step for m in history) > killed_at
