"""The commit protocol under SIGKILL and with concurrent writers: nothing partial is visible, nothing collides."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

from dreamstream.datasets import Dataset

WRITER_SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np
    from gymnasium import spaces
    from dreamstream.datasets import DatasetCard, EpisodeWriter, WriterConfig, spec_from_spaces
    from dreamstream.datasets.synthetic import random_episode

    root, episodes, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    spec = spec_from_spaces(spaces.Dict(image=spaces.Box(0, 255, (64, 64, 3), np.uint8)), spaces.Discrete(4))
    rng = np.random.default_rng(seed)
    # Incompressible frames and no compression: each shard takes a while to write, so a kill lands mid-write.
    config = WriterConfig(chunk_steps=100, shard_max_bytes=4 * 2**20, compress_level=None)
    with EpisodeWriter(root, DatasetCard.create(spec, "Test-v0"), config) as writer:
        for i in range(episodes):
            episode = random_episode(spec, 150, rng)
            episode["image"] = rng.integers(0, 256, episode["image"].shape, dtype=np.uint8)
            writer.add_episode(episode, policy="random")
            print("episode", i, flush=True)
    """
)


def start_writer(root: Path, episodes: int, seed: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WRITER_SCRIPT, str(root), str(episodes), str(seed)],
                            stdout=subprocess.PIPE, text=True)


def test_sigkill_mid_shard_leaves_only_complete_committed_shards(tmp_path):
    root = tmp_path / "ds"
    writer = start_writer(root, episodes=10_000, seed=0)
    index = root / "index"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(index.glob("*.json"))) < 3:  # committed records only
        time.sleep(0.01)
    assert writer.poll() is None, "the writer should still be running"
    writer.send_signal(signal.SIGKILL)
    writer.wait()

    dataset = Dataset(str(root))
    records = dataset.records()
    assert len(records) >= 3
    for record in records:  # every committed shard still reads and verifies
        assert dataset.read_shard(record, verify=True)
    committed = {r.name for r in records}
    for name in os.listdir(root / "shards"):
        if name.startswith("."):
            continue  # a killed writer's temporary file: hidden, never listed by readers
        assert name.endswith(".tar")
        if name[:-4] not in committed:  # killed between shard and record: complete, but not visible
            with tarfile.open(root / "shards" / name) as tar:
                assert tar.getnames()
    assert set(dataset.record_names()) == committed


def test_two_writers_on_one_root_never_collide(tmp_path):
    root = tmp_path / "ds"
    writers = [start_writer(root, episodes=4, seed=seed) for seed in (1, 2)]
    for writer in writers:
        assert writer.wait(timeout=120) == 0
    dataset = Dataset(str(root))
    records = dataset.records()
    assert len({r.writer for r in records}) == 2
    episodes = {row.episode for r in records for row in r.samples}
    assert len(episodes) == 8
    assert sum(r.steps for r in records) == 8 * 150
    for record in records:
        dataset.read_shard(record)
