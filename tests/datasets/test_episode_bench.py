"""`dreamstream bench episodes` runs end to end on a tiny dataset and reports its figures."""

from __future__ import annotations

import argparse

from dreamstream import bench as bench_command
from dreamstream.datasets import episode_bench


def test_bench_episodes_reports_every_reading_and_the_ratio(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    episode_bench.add_arguments(parser)
    args = parser.parse_args(["--episodes", "4", "--steps", "30", "--chunk-steps", "8", "--shard-mib", "0.1",
                              "--repeats", "3", "--dir", str(tmp_path)])
    result = episode_bench.run(args)
    assert result["bench"] == "episodes" and result["steps"] == 4 * 30
    for name in ("raw_read", "read_decode", "episodes"):
        figures = result[f"{name}_steps_per_s"]
        assert 0 < figures["min"] <= figures["median"] <= figures["max"]
        assert result[f"{name}_mb_s"]["min"] > 0
    ratio = result["episodes_to_read_decode"]
    assert 0 < ratio["min"] <= ratio["median"] <= ratio["max"]
    assert "episodes / read_decode:" in capsys.readouterr().out
    assert bench_command.TARGETS["episodes"] == "dreamstream.datasets.episode_bench"
    assert set(bench_command.SMOKE_CAPS) == set(bench_command.TARGETS)
