"""`dreamstream bench stats` runs end to end on a tiny dataset and reports its figures."""

from __future__ import annotations

import argparse

import pytest

from dreamstream.pipelines import bench


@pytest.mark.slow
def test_bench_stats_smoke(tmp_path):
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--mib", "2", "--shard-mib", "1", "--workers", "1", "--repeats", "1",
                              "--dir", str(tmp_path)])
    result = bench.run(args)
    assert result["bench"] == "stats" and result["dataset_mb"] >= 2
    assert result["deep_mb_s"]["1"] > 0 and result["read_mb_s"] > 0
    assert 0 < result["deep_ratio_to_read"]["1"] < 10
    assert result["deep_worker_cpu_s_per_gb"]["1"] > 0
