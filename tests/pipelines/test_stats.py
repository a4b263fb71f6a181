"""`dreamstream stats` equals an independent computation: on a LocalCluster of processes over local
files, and on a `dask scheduler` + two `dask worker` processes started here, reading from S3 (moto)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import cloudpickle
import fsspec
import numpy as np
import pytest
from pipeline_helpers import N_ACTIONS, Episode, make_episode, write_dataset

from dreamstream import cli
from dreamstream.datasets import EpisodeWriter, WriterConfig
from dreamstream.pipelines.accumulators import Moments, RewardStats
from dreamstream.pipelines.cluster import ClusterConfig, open_runner
from dreamstream.pipelines.stats import compute_stats

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def episodes(spec) -> list[Episode]:
    """Three writers, three policy versions, lengths 5..60 (several chunks), terminated and truncated."""
    rng = np.random.default_rng(7)
    kinds = [("random", 0), ("random", 1), ("expert", 2)]
    out = []
    for i in range(24):
        policy, version = kinds[i % 3]
        steps = int(rng.integers(5, 60))
        ret = float(rng.integers(-3, 10)) + (5.0 if policy == "expert" else 0.0)
        out.append(make_episode(spec, rng, steps, ret, terminal=i % 4 != 0, policy=policy, version=version,
                                writer=["wa", "wb", "wc"][i % 3 if i < 20 else 0]))
    return out


def partial_rows(spec, rng) -> dict[str, np.ndarray]:
    """An episode's first 10 rows that never ends (its writer closes mid-episode): incomplete."""
    e = make_episode(spec, rng, 10, 0.0)
    e.arrays["is_last"][:] = False
    e.arrays["is_terminal"][:] = False
    return e.arrays


def write_all(url: str, card, spec, episodes: list[Episode]) -> dict[str, np.ndarray]:
    write_dataset(url, card, episodes)
    partial = partial_rows(spec, np.random.default_rng(1))
    with EpisodeWriter(url, card, WriterConfig(chunk_steps=16), writer_id="wpartial") as writer:
        for t in range(10):
            writer.add_step({k: v[t] for k, v in partial.items()}, slot=0, policy="random", policy_version=0)
    return partial


def expected(episodes: list[Episode], partial: dict[str, np.ndarray]) -> dict:
    """The statistics computed here, from the arrays the test wrote (no dreamstream code)."""
    rows = [e.arrays for e in episodes] + [partial]
    cat = {name: np.concatenate([r[name] for r in rows]) for name in rows[0]}
    moves = ~cat["is_first"]
    groups: dict[str, list[Episode]] = {}
    for e in episodes:
        groups.setdefault(f"{e.policy}@{e.version}", []).append(e)
    writers: dict[str, list[Episode]] = {}
    for e in episodes:
        writers.setdefault(e.writer, []).append(e)
    image = cat["image"].reshape(-1, 3).astype(np.float64)
    grid = cat["grid"].reshape(-1, 2)
    return {
        "complete": len(episodes),
        "total": len(episodes) + 1,
        "steps": sum(e.steps for e in episodes) + 10,
        "mean_return": float(np.mean([e.ret for e in episodes])),
        "std_length": float(np.std([e.steps for e in episodes])),
        "terminated": sum(e.terminal for e in episodes),
        "actions": np.bincount(cat["action"][moves], minlength=N_ACTIONS).tolist(),
        "rewards": dict(sorted(Counter(cat["reward"][moves].tolist()).items())),
        "by_policy": {k: (len(v), float(np.mean([e.ret for e in v]))) for k, v in groups.items()},
        "by_writer": {k: (len(v), sum(e.steps for e in v)) for k, v in writers.items()},
        "image_mean": image.mean(0),
        "image_std": image.std(0),
        "vector_mean": cat["vector"].astype(np.float64).mean(0),
        "vector_std": cat["vector"].astype(np.float64).std(0),
        "grid_freq": [np.bincount(grid[:, c], minlength=n) / len(grid) for c, n in enumerate((6, 3))],
    }


def check(summary: dict, want: dict) -> None:
    assert summary["episodes"]["complete"] == want["complete"]
    assert summary["episodes"]["total"] == want["total"]
    assert summary["episodes"]["incomplete"] == 1
    assert summary["steps"] == want["steps"] == summary["rows_read"]
    assert summary["return"]["mean"] == pytest.approx(want["mean_return"])
    assert summary["length"]["std"] == pytest.approx(want["std_length"])
    assert summary["episodes"]["terminated"] == want["terminated"]
    assert summary["episodes"]["truncated"] == want["complete"] - want["terminated"]
    assert summary["actions"]["counts"] == want["actions"]
    assert dict(zip(summary["rewards"]["values"], summary["rewards"]["counts"], strict=True)) == want["rewards"]
    for key, (n, mean) in want["by_policy"].items():
        group = summary["by_policy"][key]
        assert group["complete"] == n
        assert group["return"]["mean"] == pytest.approx(mean)
    for key, (n, steps) in want["by_writer"].items():
        assert summary["by_writer"][key]["episodes"] == n
        assert summary["by_writer"][key]["steps"] == steps
    obs = summary["observations"]
    assert np.allclose(obs["image"]["mean"], want["image_mean"])
    assert np.allclose(obs["image"]["std"], want["image_std"])
    assert np.allclose(obs["vector"]["mean"], want["vector_mean"], atol=1e-9)
    assert np.allclose(obs["vector"]["std"], want["vector_std"], atol=1e-9)
    for c in range(2):
        assert np.allclose(obs["grid"]["frequencies"][c], want["grid_freq"][c])


def test_stats_on_local_cluster_equal_independent_computation(tmp_path, card, spec, episodes, cluster):
    url = str(tmp_path / "ds")
    partial = write_all(url, card, spec, episodes)
    result = compute_stats(url, cluster, deep=True)
    assert result.summary["workers"] == 2
    assert result.summary["shards"] > 6  # several tasks, episodes spanning shards
    check(result.summary, expected(episodes, partial))
    assert set(result.mean_frames) == {"image"}
    # shallow stats read the same numbers without decoding frames
    shallow = compute_stats(url, cluster, deep=False).summary
    assert shallow["actions"] == result.summary["actions"] and "observations" not in shallow


def test_stats_on_local_cluster_from_s3(s3_url, card, spec, episodes, cluster):
    """LocalCluster workers reach moto with the AWS_* / FSSPEC_S3_* variables they inherited at start."""
    env = cluster.client.run(lambda: os.environ.get("FSSPEC_S3_ENDPOINT_URL"))
    assert set(env.values()) == {os.environ["FSSPEC_S3_ENDPOINT_URL"]}
    url = f"{s3_url}/ds"
    partial = write_all(url, card, spec, episodes)
    check(compute_stats(url, cluster, deep=True).summary, expected(episodes, partial))


def test_stats_cli_json_and_html_report(tmp_path, card, spec, episodes, scheduler_address, capsys):
    url = str(tmp_path / "ds")
    partial = write_all(url, card, spec, episodes)
    report = tmp_path / "report"
    code = cli.main(["stats", url, "--deep", "--json", "--scheduler", scheduler_address, "--report", str(report)])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    check(summary, expected(episodes, partial))
    page = (report / "index.html").read_text()
    assert page.count("<img src='data:image/png;base64,") >= 6  # returns, by policy, by writer, actions, obs...
    assert json.loads((report / "stats.json").read_text())["steps"] == summary["steps"]
    assert cli.main(["stats", url, "--workers", "0"]) == 0
    table = capsys.readouterr().out
    assert "random@1" in table and "expert@2" in table and "wpartial" in table


def test_stats_in_process_equals_cluster(tmp_path, card, spec, episodes):
    url = str(tmp_path / "ds")
    partial = write_all(url, card, spec, episodes)
    with open_runner(ClusterConfig(workers=0, progress=False)) as runner:
        check(compute_stats(url, runner, deep=True).summary, expected(episodes, partial))


# -- a real `dask scheduler` and two `dask worker` processes, reading S3 ---------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def external_cluster(tmp_path, s3_endpoint, monkeypatch):
    """`dask scheduler` + 2 `dask worker` subprocesses on free loopback ports, with credentials that exist
    only in their environment (moto accepts any): the test then checks they never enter the graph."""
    secret = f"SeCrEt{os.getpid()}x{time.time_ns()}"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDPIPELINETEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    fsspec.AbstractFileSystem.clear_instance_cache()  # the client's s3fs takes the new credentials too
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path / "dask-logs"
    logs.mkdir()
    dask = str(BIN / "dask")
    processes = []
    try:
        with open(logs / "scheduler.log", "wb") as log:
            processes.append(subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                               "--dashboard-address", ":0"], stdout=log, stderr=log))
        for i in range(2):
            with open(logs / f"worker{i}.log", "wb") as log:
                processes.append(subprocess.Popen(
                    [dask, "worker", address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard",
                     "--name", f"w{i}"], stdout=log, stderr=log))
        from distributed import Client

        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=90)
        yield address, secret, logs
    finally:
        for p in reversed(processes):
            p.terminate()
        for p in processes:
            try:
                p.wait(timeout=3)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_stats_on_dask_scheduler_and_workers_from_s3(s3_url, card, spec, episodes, external_cluster, monkeypatch):
    address, secret, logs = external_cluster
    url = f"{s3_url}/ds"
    partial = write_all(url, card, spec, episodes)

    from distributed import Client

    sent: list[bytes] = []
    submit = Client.submit

    def recording_submit(self, fn, *args, **kwargs):
        sent.append(cloudpickle.dumps((fn, args, kwargs)))
        return submit(self, fn, *args, **kwargs)

    monkeypatch.setattr(Client, "submit", recording_submit)
    with open_runner(ClusterConfig(scheduler=address, progress=False)) as runner:
        # the workers reach moto through their own environment (inherited from this process), not the tasks
        env = runner.client.run(lambda: (os.environ.get("FSSPEC_S3_ENDPOINT_URL"),
                                         os.environ.get("AWS_SECRET_ACCESS_KEY") is not None))
        assert len(env) == 2 and all(v == (os.environ["FSSPEC_S3_ENDPOINT_URL"], True) for v in env.values())
        result = compute_stats(url, runner, deep=True)
        assert result.summary["workers"] == 2
    check(result.summary, expected(episodes, partial))

    assert len(sent) == result.summary["shards"]  # one task per shard
    for blob in sent:
        assert secret.encode() not in blob and b"AKIDPIPELINETEST" not in blob
        assert url.encode() in blob  # the task carries the URL, and opens the store on the worker
    assert secret not in json.dumps(result.summary)
    for log in logs.iterdir():
        assert secret not in log.read_text(errors="replace"), log.name


# -- accumulators: merging in any order gives the whole-array answer --------------------------------------


def test_moments_and_rewards_merge_in_any_order():
    rng = np.random.default_rng(3)
    x = rng.normal(1e6, 3.0, (1000, 4))  # a large mean: naive sums of squares would lose the std
    parts = np.array_split(x, 7)
    total = Moments((4,))
    for i in rng.permutation(7):
        m = Moments((4,))
        m.update(parts[i])
        total.merge(m)
    assert total.n == 1000
    assert np.allclose(total.mean, x.mean(0)) and np.allclose(total.std, x.std(0), rtol=1e-9)

    rewards = rng.normal(0, 1, 5000).astype(np.float32)  # continuous: past exact counts, histogram
    a, b = RewardStats(), RewardStats()
    a.update(np.round(rewards[:100]))  # few distinct values: exact counts
    b.update(rewards[100:])
    a.merge(b)
    out = a.to_json()
    assert sum(out["counts"]) == 5000 and "edges" in out
    assert out["mean"] == pytest.approx(np.concatenate([np.round(rewards[:100]), rewards[100:]]).mean(), abs=1e-6)
