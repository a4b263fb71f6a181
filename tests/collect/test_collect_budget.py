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
