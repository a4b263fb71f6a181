"""A Minari dataset on disk is input: malformed ones fail with a project error before anything large is made."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from gymnasium import spaces
from minari.data_collector import EpisodeBuffer
from minari_helpers import cli, minari_dataset

from dreamstream.datasets import Dataset

OBS, ACT = spaces.Box(-1, 1, (3,), np.float32), spaces.Discrete(2)


def small(minari_root: Path, data_format: str = "arrow") -> Path:
    """A two-episode arrow dataset -> its data/ folder."""
    buffers = [EpisodeBuffer(observations=np.zeros((4, 3), np.float32), actions=np.array([0, 1, 0]),
                             rewards=[1.0, 1.0, 1.0], terminations=[False, False, True],
                             truncations=[False, False, False]) for _ in range(2)]
    minari_dataset("bad/input-v0", buffers, observation_space=OBS, action_space=ACT, data_format=data_format)
    return minari_root / "bad" / "input-v0" / "data"


def edit_metadata(path: Path, **changes) -> None:
    metadata = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            metadata.pop(key)
        else:
            metadata[key] = value
    path.write_text(json.dumps(metadata))


def refused(tmp_path: Path, source: Path, *words: str) -> str:
    code, _, err = cli("import", "minari", str(source), "--out", str(tmp_path / "out"))
    assert code == 2, err
    for word in words:
        assert word in err, err
    assert not (tmp_path / "out" / "dataset.json").exists()
    return err


def test_a_dataset_that_does_not_declare_its_spaces_is_refused_before_minari_makes_its_env(tmp_path, minari_root):
    data = small(minari_root)
    edit_metadata(data / "metadata.json", observation_space=None,
                  env_spec=json.dumps({"id": "Evil-v0", "entry_point": "os:system", "kwargs": {"command": "false"}}))
    refused(tmp_path, data, "key 'observation_space'", "must declare its spaces")


@pytest.mark.parametrize("space, words", [
    ({"type": "Box", "dtype": "float32", "shape": [65536, 65536], "low": 0.0, "high": 1.0}, ["shape [65536, 65536]"]),
    ({"type": "MultiDiscrete", "dtype": "int64", "nvec": 7}, ["shape"]),
    ("not a space", ["not a serialized space"]),
])
def test_huge_or_malformed_declared_spaces_are_refused(tmp_path, minari_root, space, words):
    data = small(minari_root)
    edit_metadata(data / "metadata.json", observation_space=json.dumps(space))
    refused(tmp_path, data, "metadata.json", *words)


def test_an_oversized_metadata_file_is_refused(tmp_path, minari_root):
    data = small(minari_root)
    edit_metadata(data / "metadata.json", description="x" * 2**21)
    refused(tmp_path, data, "metadata.json", "bytes")


@pytest.mark.parametrize("steps, words", [(2**40, ["episode 1 declares 1099511627776 steps"]),
                                          (5, ["episode 1", "field vector", "vector is float32[4, 3]",
                                               "declares [6, 3]"])])
def test_an_episode_declaring_other_steps_than_it_holds_is_refused(tmp_path, minari_root, steps, words):
    data = small(minari_root)
    path = data / "1" / "metadata.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "total_steps": steps}))
    refused(tmp_path, data, *words)


@pytest.mark.parametrize("data_format", ["arrow", "hdf5"])
def test_damaged_episode_data_is_a_dataset_error(tmp_path, minari_root, data_format):
    data = small(minari_root, data_format)
    damaged = sorted(p for p in data.rglob("*") if p.is_file() and p.name != "metadata.json")[-1]
    damaged.write_bytes(b"\0garbage" * 64)
    refused(tmp_path, data, "Minari dataset bad/input-v0")


def test_a_malformed_recorded_spec_is_refused_and_one_that_disagrees_with_the_spaces_is_not_trusted(
        tmp_path, minari_root):
    data = small(minari_root)
    edit_metadata(data / "metadata.json", dreamstream={"spec": {"observations": "no"}})
    refused(tmp_path, data, "metadata.json", "dreamstream.spec")
    lying = {"observations": {"vector": {"shape": [64, 64, 3], "dtype": "uint8", "kind": "image"}},
             "action": {"kind": "discrete", "n": 2}}
    edit_metadata(data / "metadata.json", dreamstream={"spec": lying})
    code, _, err = cli("import", "minari", str(data), "--out", str(tmp_path / "out"))
    assert code == 0, err
    field = Dataset(str(tmp_path / "out")).spec.observations["vector"]
    assert (field.kind, field.shape, field.dtype) == ("vector", (3,), "float32"), "the declared spaces win"
