"""Signals, killed and crashing workers, and hot-reloaded policy snapshots, with real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from collect_helpers import chunks, publish, publish_dreamer, validate

from dreamstream.collect.collector import Collector
from dreamstream.collect.config import CollectConfig, EnvConfig
from dreamstream.collect.envs import make_env
from dreamstream.datasets import Dataset, WriterConfig
from dreamstream.datasets.verify import find_orphans

HELPERS = str(Path(__file__).parent)


def wait_until(condition, timeout: float = 60.0, step: float = 0.05, poll=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if poll is not None:
            poll()
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"condition not met within {timeout} s")


def record_names(root: Path) -> list[str]:
    index = root / "index"
    return sorted(p.name for p in index.glob("*.json")) if index.exists() else []


@pytest.mark.slow
def test_sigterm_commits_and_loses_no_committed_shard(tmp_path):
    root = tmp_path / "ds"
    process = subprocess.Popen(
        [sys.executable, "-m", "dreamstream.cli", "collect", "--env", "minigrid_empty", "--out", str(root),
         "--workers", "2", "--no-progress", "--set", "data.shard_max_age_s=0.3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        before = wait_until(lambda: len(record_names(root)) >= 3 and record_names(root))
        sizes = {name: (root / "shards" / name.replace(".json", ".tar")).stat().st_size for name in before}
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "stopped early" in out
    after = record_names(root)
    assert set(before) <= set(after)  # nothing committed was lost ...
    for name, size in sizes.items():  # ... or rewritten
        assert (root / "shards" / name.replace(".json", ".tar")).stat().st_size == size
    assert validate(str(root))[0] == 0
    steps = sum(c.row.steps for c in chunks(str(root)))
    assert f"collected {steps} steps" in out  # every row the workers reported is committed


@pytest.mark.slow
def test_killed_worker_leaves_a_valid_dataset_and_the_others_go_on(tmp_path):
    root = str(tmp_path / "ds")
    collector = Collector(EnvConfig(id="MiniGrid-Empty-5x5-v0"), root, CollectConfig(workers=2),
                          WriterConfig(shard_max_age_s=0.2))
    collector.start()
    try:
        dataset = Dataset(root)
        wait_until(lambda: len({r.writer for r in dataset.records()}) == 2, poll=collector.poll)
        killed = collector._processes[0].pid
        os.kill(killed, signal.SIGKILL)
        wait_until(lambda: collector.workers[0].error is not None, poll=collector.poll)
        count = len(dataset.records())
        wait_until(lambda: len(dataset.records()) > count + 1, poll=collector.poll)  # worker 1 still commits
        os.kill(collector._processes[1].pid, signal.SIGTERM)  # SIGTERM to a worker: it commits and exits
        summary = collector.wait(timeout=60)
        assert collector.workers[1].done and collector.workers[1].exitcode == 0
    finally:
        if collector.running:
            collector.stop()
    assert list(summary.failed) == [0] and "signal 9" in summary.failed[0]
    for record in dataset.records():
        assert dataset.read_shard(record, verify=True)
    # a kill between a shard and its record can leave one orphan (invisible to readers) of the killed worker
    orphans = find_orphans(dataset, dataset.record_names())
    assert len(orphans) <= 1 and all(f"_{killed}_" in o.where for o in orphans), orphans


@pytest.mark.slow
def test_crashing_worker_is_reported_and_the_other_keeps_its_data(tmp_path):
    root = tmp_path / "ds"
    result = subprocess.run(
        [sys.executable, "-m", "dreamstream.cli", "collect", "--env", "collect_helpers:Crashing-v0", "--out", str(root),
         "--workers", "2", "--steps", "1000", "--no-progress", "--set", "env.kind=gym"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": HELPERS, "CRASH_MARKER": str(tmp_path / "crashed")},
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" in result.stderr and "RuntimeError: tiny env crash (deliberate)" in result.stderr
    assert "crashed (the other workers go on)" in result.stderr
    assert validate(str(root))[0] == 0
    per_writer: dict[str, int] = {}
    for record in Dataset(str(root)).records():
        per_writer[record.writer] = per_writer.get(record.writer, 0) + record.steps
    assert sorted(per_writer.values())[-1] == 500  # the survivor reached its budget
    assert len(per_writer) == 2  # the crashed worker committed what it had too


def test_snapshot_published_while_collecting_is_picked_up(tmp_path):
    env = make_env(EnvConfig(id="MiniGrid-Empty-5x5-v0"))
    spec = env.episode_spec
    snapshots = tmp_path / "snapshots"
    snapshots.mkdir()
    root = str(tmp_path / "ds")
    collect = CollectConfig(workers=1, poll_seconds=0.2, wait_for_snapshot=True, greedy=True)
    collector = Collector(EnvConfig(id="MiniGrid-Empty-5x5-v0"), root, collect, WriterConfig(shard_max_age_s=0.3),
                          policy=str(snapshots))
    collector.start()
    dataset = Dataset(root)

    def versions() -> set[tuple[str, int]]:
        return {(row.policy, row.policy_version) for r in dataset.records() for row in r.samples}

    try:
        wait_until(lambda: ("random", 0) in versions(), poll=collector.poll)  # no snapshot yet: random
        publish_dreamer(snapshots, spec, version=1, action=1)
        wait_until(lambda: ("dreamer", 1) in versions(), poll=collector.poll)
        publish_dreamer(snapshots, spec, version=2, action=2)
        wait_until(lambda: ("dreamer", 2) in versions(), poll=collector.poll)
        summary = collector.stop()
    finally:
        if collector.running:
            collector.stop()
    assert not summary.failed
    assert {(e.policy, e.policy_version) for e in collector.episodes} <= {("random", 0), ("dreamer", 1),
                                                                          ("dreamer", 2)}
    for chunk in chunks(root):
        actions = chunk.arrays["action"][~chunk.arrays["is_first"]]
        if chunk.row.policy == "dreamer" and len(actions):
            assert (actions == chunk.row.policy_version).all()  # version N acts N


@pytest.mark.parametrize("wait", [False, True])
def test_snapshot_for_another_env_is_refused(tmp_path, capsys, wait):
    from dreamstream.cli import main

    cartpole = make_env(EnvConfig(id="CartPole-v1")).episode_spec
    snapshots = tmp_path / "snapshots"
    publish(snapshots, cartpole, version=3, action=0)
    root = tmp_path / "ds"
    args = ["collect", "--env", "minigrid_empty", "--out", str(root), "--policy", str(snapshots)]
    if wait:
        args += ["--set", "collect.wait_for_snapshot=true"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "does not match the env" in err
    assert "extra field 'vector' (vector float32 [4])" in err and "policy-000003.pt" in err  # both specs, shapes
    assert "no field 'grid' (categorical uint8 [7, 7, 3]" in err
    assert not root.exists()
