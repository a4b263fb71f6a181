"""Writer and reader throughput for 64x64x3 frames, against bare fsspec moving the same bytes.

For each store (local disk; S3 when --s3-endpoint is given or --moto starts one) and each member
encoding (plain .npy, zstd), it times EpisodeWriter and Dataset.read_shard, then writes and reads the
same number of bytes with bare fsspec calls, and reports MB/s, frames/s and their ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, default=10_000, help="64x64x3 frames to write and read")
    parser.add_argument("--source", choices=["atari", "synthetic"], default="atari",
                        help="atari: real Pong frames from ale-py (compress like game data); synthetic: generated")
    parser.add_argument("--moto", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure S3 through a moto server started on loopback")


def atari_frames(count: int, seed: int = 0) -> np.ndarray:
    """Real 64x64x3 Pong frames under a random policy (frame skip 4), resized with INTER_AREA."""
    import ale_py
    import cv2
    import gymnasium

    gymnasium.register_envs(ale_py)
    env = gymnasium.make("ALE/Pong-v5", frameskip=4, repeat_action_probability=0.25)
    rng = np.random.default_rng(seed)
    frames = np.empty((count, 64, 64, 3), np.uint8)
    obs, _ = env.reset(seed=seed)
    for i in range(count):
        frames[i] = cv2.resize(obs, (64, 64), interpolation=cv2.INTER_AREA)
        obs, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()
    return frames


def episodes_from(frames: np.ndarray, spec: Any, episode_steps: int) -> list[dict[str, np.ndarray]]:
    from dreamstream.datasets.synthetic import random_episode

    rng = np.random.default_rng(0)
    episodes = []
    for start in range(0, len(frames), episode_steps):
        part = frames[start : start + episode_steps]
        episode = random_episode(spec, len(part), rng)
        episode["image"] = part
        episodes.append(episode)
    return episodes


def bare_io(url: str, blobs: list[bytes]) -> tuple[float, float]:
    """Seconds to write then read `blobs` as files with bare fsspec calls (the baseline)."""
    from dreamstream.datasets.storage import open_fs, read_options

    fs, root = open_fs(url)
    fs.makedirs(f"{root}/bare", exist_ok=True)
    start = time.perf_counter()
    for i, blob in enumerate(blobs):
        fs.pipe_file(f"{root}/bare/{i}.bin", blob)
    write_s = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(len(blobs)):
        with fs.open(f"{root}/bare/{i}.bin", "rb", **read_options(fs)) as f:
            f.read()
    return write_s, time.perf_counter() - start


def measure(url: str, episodes: list[dict[str, np.ndarray]], spec: Any, level: int | None,
            baseline: tuple[float, float] | None = None) -> tuple[dict[str, float], tuple[float, float]]:
    """Write then read `episodes` through dreamstream; compare with `baseline` (bare write/read seconds).

    Without a baseline, it is measured here on this run's shard bytes (for .npy shards: the raw bytes).
    """
    from dreamstream.datasets import Dataset, DatasetCard, EpisodeWriter, WriterConfig

    frames = sum(len(e["reward"]) for e in episodes)
    card = DatasetCard.create(spec, "ALE/Pong-v5", description="bench")
    start = time.perf_counter()
    with EpisodeWriter(url, card, WriterConfig(compress_level=level)) as writer:
        for episode in episodes:
            writer.add_episode(episode)
    write_s = time.perf_counter() - start
    dataset = Dataset(url)
    records = dataset.records()
    stored = sum(r.bytes for r in records)

    start = time.perf_counter()
    read_frames = sum(len(c.arrays["image"]) for r in records for c in dataset.read_shard(r))
    read_s = time.perf_counter() - start
    assert read_frames == frames
    if baseline is None:
        baseline = bare_io(url, [dataset.shard_bytes(r, verify=False) for r in records])
    bare_write_s, bare_read_s = baseline
    raw_mb = frames * 64 * 64 * 3 / 1e6
    return {
        "stored_mb": stored / 1e6,
        "compression": raw_mb / (stored / 1e6),
        "write_frames_per_s": frames / write_s,
        "write_raw_mb_per_s": raw_mb / write_s,
        "write_ratio": bare_write_s / write_s,
        "read_frames_per_s": frames / read_s,
        "read_raw_mb_per_s": raw_mb / read_s,
        "read_ratio": bare_read_s / read_s,
    }, baseline


def measure_store(prefix: str, episodes: list[dict[str, np.ndarray]], spec: Any) -> dict[str, dict[str, float]]:
    """Plain .npy first (its shard bytes are the bare baseline), then zstd against the same baseline."""
    npy, baseline = measure(f"{prefix}/{uuid.uuid4().hex}", episodes, spec, None)
    zstd, _ = measure(f"{prefix}/{uuid.uuid4().hex}", episodes, spec, 3, baseline)
    store = prefix.split("://")[0] if "://" in prefix else "local"
    return {f"{store}/npy": npy, f"{store}/zstd3": zstd}


@contextlib.contextmanager
def moto_endpoint() -> Iterator[str]:
    """A moto S3 server on a free loopback port, for the duration of the benchmark."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = shutil.which("moto_server", path=os.path.dirname(sys.executable)) or "moto_server"
    process = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait()


def run(args: argparse.Namespace) -> dict[str, Any]:
    import fsspec
    from gymnasium import spaces

    from dreamstream.datasets import spec_from_spaces

    spec = spec_from_spaces(spaces.Dict(image=spaces.Box(0, 255, (64, 64, 3), np.uint8)), spaces.Discrete(18))
    if args.source == "atari":
        frames = atari_frames(args.frames)
    else:
        from dreamstream.datasets.synthetic import random_episode

        frames = random_episode(spec, args.frames, np.random.default_rng(0))["image"]
    episodes = episodes_from(frames, spec, episode_steps=1000)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results.update(measure_store(tmp, episodes, spec))
    if args.moto:
        with moto_endpoint() as endpoint:
            # The benchmark's private endpoint and dummy keys, for every s3fs instance in this process.
            fsspec.config.conf["s3"] = {"endpoint_url": endpoint, "key": "bench", "secret": "bench"}
            bucket = f"bench-{uuid.uuid4().hex[:8]}"
            fsspec.filesystem("s3").mkdir(bucket)
            results.update(measure_store(f"s3://{bucket}", episodes, spec))
            fsspec.config.conf.pop("s3")
    print(f"{'store/encoding':<12}{'size MB':>9}{'x smaller':>10}{'write fr/s':>12}{'MB/s':>8}{'vs bare':>8}"
          f"{'read fr/s':>12}{'MB/s':>8}{'vs bare':>8}")
    for name, r in results.items():
        print(f"{name:<12}{r['stored_mb']:>9.1f}{r['compression']:>10.1f}{r['write_frames_per_s']:>12,.0f}"
              f"{r['write_raw_mb_per_s']:>8.0f}{r['write_ratio']:>8.2f}{r['read_frames_per_s']:>12,.0f}"
              f"{r['read_raw_mb_per_s']:>8.0f}{r['read_ratio']:>8.2f}")
    print("MB/s: raw frame megabytes (frames x 12,288 bytes) per second. 'vs bare': seconds that bare fsspec "
          "takes to write/read the raw (.npy) shard bytes / seconds dreamstream takes; above 1 is faster than bare.")
    local = results["local/zstd3"]
    return {"bench": "format", "frames": args.frames, "source": args.source,
            "write_frames_per_s": round(local["write_frames_per_s"]),
            "read_frames_per_s": round(local["read_frames_per_s"]),
            "write_ratio": round(local["write_ratio"], 3), "read_ratio": round(local["read_ratio"], 3),
            "results": {k: {m: round(v, 3) for m, v in r.items()} for k, r in results.items()}}
