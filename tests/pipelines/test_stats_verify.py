"""`stats` trusts the sha256 checked when a shard was committed unless `--verify`; sizes, tar structure and
the spec are checked either way (a truncated shard is refused without --verify)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pipeline_helpers import make_episode, write_dataset

from dreamstream import cli
from dreamstream.datasets import Dataset
from dreamstream.datasets.errors import DatasetError, ReadError
from dreamstream.datasets.tar import tar_members
from dreamstream.pipelines.cluster import ClusterConfig, open_runner
from dreamstream.pipelines.stats import compute_stats


def one_shard_dataset(url: str, card, spec) -> Path:
    """A dataset of two episodes in plain .npy members; -> the path of its first shard file."""
    rng = np.random.default_rng(3)
    write_dataset(url, card, [make_episode(spec, rng, 20, 1.0), make_episode(spec, rng, 12, 0.0)],
                  compress_level=None)
    record = Dataset(url).records()[0]
    return Path(url) / record.shard_path


def flip_last_pixel(shard: Path) -> None:
    """Change the last byte of the first image member: the shard keeps its size and stays a valid
    shard of valid frames, only its sha256 no longer matches the commit record."""
    data = shard.read_bytes()
    start = np.frombuffer(data, np.uint8).ctypes.data
    for name, contents in tar_members(data):
        if ".image." in name:
            last = np.frombuffer(contents, np.uint8).ctypes.data - start + len(contents) - 1
            changed = bytearray(data)
            changed[last] ^= 0xFF
            shard.write_bytes(bytes(changed))
            return
    raise AssertionError("no image member")


def deep(url: str, verify: bool) -> dict:
    with open_runner(ClusterConfig(workers=0, progress=False)) as runner:
        return compute_stats(url, runner, deep=True, verify=verify).summary


def test_a_changed_byte_is_found_only_with_verify(tmp_path, card, spec):
    url = str(tmp_path / "ds")
    shard = one_shard_dataset(url, card, spec)
    before = deep(url, verify=True)
    assert before["verify"] is True and deep(url, verify=False)["observations"] == before["observations"]
    flip_last_pixel(shard)
    trusted = deep(url, verify=False)  # the commit-time checksum is trusted: the changed pixel is counted
    assert trusted["verify"] is False and trusted["steps"] == before["steps"]
    assert trusted["observations"]["image"] != before["observations"]["image"]
    with pytest.raises(ReadError, match="sha256 mismatch") as error:
        deep(url, verify=True)
    assert shard.name in str(error.value)
    assert cli.main(["stats", url, "--deep", "--verify", "--workers", "0"]) == 2
    assert cli.main(["stats", url, "--deep", "--workers", "0"]) == 0


def test_a_truncated_shard_is_refused_without_verify(tmp_path, card, spec):
    url = str(tmp_path / "ds")
    shard = one_shard_dataset(url, card, spec)
    shard.write_bytes(shard.read_bytes()[:-512])
    with pytest.raises(DatasetError, match="commit record says") as error:
        deep(url, verify=False)
    assert shard.name in str(error.value)
