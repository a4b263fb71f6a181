"""An online trainer paces collectors with a step budget: workers wait at it and go on when it grows."""

from __future__ import annotations

import time

from dreamstream.collect.collector import Collector
from dreamstream.collect.config import CollectConfig, EnvConfig
from dreamstream.collect.loop import STOP_CHECK_ROWS
from dreamstream.datasets import Dataset, WriterConfig


def wait_for_steps(collector: Collector, at_least: int, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        collector.poll(timeout=0.2)
        steps = collector.summary().steps
        if steps >= at_least:
            return steps
    raise AssertionError(f"collector reached {collector.summary().steps} steps, expected {at_least}")


def test_workers_wait_at_the_budget_and_resume_when_it_grows(tmp_path):
    root = str(tmp_path / "data")
    collector = Collector(EnvConfig(id="MiniGrid-Empty-5x5-v0"), root, CollectConfig(workers=2),
                          WriterConfig(shard_max_age_s=0.5))
    collector.allow_steps(300)
    collector.start()
    try:
        wait_for_steps(collector, 300)
        time.sleep(1.5)  # well beyond the time the workers need for thousands of steps
        collector.poll(timeout=0.2)
        held = collector.summary().steps
        slack = 2 * (STOP_CHECK_ROWS + 2)  # each worker checks its share every STOP_CHECK_ROWS rows
        assert 300 <= held <= 300 + slack, held
        # Rows collected before the pause are committed while the workers wait (age limit 0.5 s).
        assert sum(r.steps for r in Dataset(root).records()) >= 300 - slack

        collector.allow_steps(1000)
        assert wait_for_steps(collector, 1000) <= 1000 + slack
    finally:
        collector.stop()


PARENT = """
import sys, time
from dreamstream.collect.collector import Collector
from dreamstream.collect.config import CollectConfig, EnvConfig
from dreamstream.datasets import WriterConfig

collector = Collector(EnvConfig(id="MiniGrid-Empty-5x5-v0"), sys.argv[1], CollectConfig(workers=1),
                      WriterConfig(shard_max_age_s=0.5))
collector.allow_steps(200)
collector.start()
while collector.summary().steps < 200:
    collector.poll(timeout=0.2)
print("ready", flush=True)
time.sleep(600)
"""


def test_workers_of_a_killed_parent_commit_and_end_instead_of_waiting_at_the_budget(tmp_path):
    """A trainer killed with SIGKILL raises no budget again: its orphaned workers must not wait forever."""
    import os
    import signal
    import subprocess
    import sys

    root = str(tmp_path / "data")
    parent = subprocess.Popen([sys.executable, "-c", PARENT, root], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout.readline().strip() == "ready"
        workers = _children(parent.pid)
        assert workers, "the parent has no worker process"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 30
        alive = workers
        while alive and time.monotonic() < deadline:
            time.sleep(0.2)
            alive = [pid for pid in workers if _alive(pid)]
        assert not alive, f"workers {alive} still wait at the budget after their parent was killed"
        assert sum(r.steps for r in Dataset(root).records()) >= 200 - 2 * (STOP_CHECK_ROWS + 2)
    finally:
        parent.kill()


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (from /proc)."""
    from pathlib import Path

    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().split(")")[-1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, reaped by nobody yet, counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
