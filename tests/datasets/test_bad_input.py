"""Damaged or hostile input: a clear error naming shard, key and field; nothing committed is lost; no pickle."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from dreamstream.datasets import CommitRecord, Dataset, DatasetError, EpisodeWriter, SpecError, WriterConfig
from dreamstream.datasets.codec import npy_bytes
from dreamstream.datasets.synthetic import random_episode


@pytest.fixture
def dataset(tmp_path, card, spec) -> Dataset:
    """Three committed shards of good data."""
    url = str(tmp_path / "ds")
    rng = np.random.default_rng(0)
    with EpisodeWriter(url, card, WriterConfig(chunk_steps=10)) as writer:
        for _ in range(3):
            writer.add_episode(random_episode(spec, 25, rng))
            writer.commit()
    return Dataset(url)


def good_shards_still_read(dataset: Dataset, damaged: str) -> None:
    others = [r for r in dataset.records() if r.shard_path != damaged]
    assert others
    for record in others:
        assert dataset.read_shard(record)


def commit_raw_shard(dataset: Dataset, name: str, members: dict[str, bytes], template) -> CommitRecord:
    """Commit a hand-made shard (members in order) with a correct checksum, reusing `template`'s rows."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    data = buffer.getvalue()
    record = CommitRecord(name=name, bytes=len(data), sha256=hashlib.sha256(data).hexdigest(), writer="test",
                          created=0.0, samples=template.samples[:1])
    root = Path(dataset.root)
    (root / record.shard_path).write_bytes(data)
    (root / record.record_path).write_bytes(record.dumps())
    return record


def sample_members(dataset: Dataset, record: CommitRecord) -> dict[str, bytes]:
    """The first sample's members of a good shard, named `<key>.<field>.<suffix>`."""
    data = dataset.shard_bytes(record)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        key = record.samples[0].key
        return {m.name: tar.extractfile(m).read() for m in tar if m.name.startswith(key + ".")}


def test_truncated_shard_is_named(dataset):
    record = dataset.records()[1]
    path = Path(dataset.root) / record.shard_path
    path.write_bytes(path.read_bytes()[: record.bytes // 2])
    with pytest.raises(DatasetError, match=rf"shard {record.shard_path}: shard has \d+ bytes.*truncated"):
        dataset.read_shard(record)
    damaged = rf"shard {record.shard_path}: tar header at offset \d+: .*(past the end|truncated)"
    with pytest.raises(DatasetError, match=damaged):
        dataset.read_shard(record, verify=False)
    good_shards_still_read(dataset, record.shard_path)


def test_checksum_mismatch_is_named(dataset):
    record = dataset.records()[0]
    path = Path(dataset.root) / record.shard_path
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=rf"shard {record.shard_path}: sha256 mismatch"):
        dataset.read_shard(record)
    good_shards_still_read(dataset, record.shard_path)


def test_unknown_format_version_and_missing_card(dataset, tmp_path):
    card_path = Path(dataset.root) / "dataset.json"
    card = json.loads(card_path.read_text())
    card["version"] = 2
    card_path.write_text(json.dumps(card))
    with pytest.raises(DatasetError, match="format version 2; this reader supports version 1"):
        _ = Dataset(dataset.url).card
    card_path.unlink()
    with pytest.raises(DatasetError, match=r"no dataset\.json"):
        _ = Dataset(dataset.url).card


def test_sample_breaking_the_spec_names_shard_key_and_field(dataset):
    template = dataset.records()[0]
    members = sample_members(dataset, template)
    key = template.samples[0].key
    steps = template.samples[0].steps
    members[f"{key}.vector.npy"] = npy_bytes(np.zeros((steps, 4), np.float32))  # spec says (5,)
    record = commit_raw_shard(dataset, "bad-000000", members, template)
    expected = rf"shard shards/bad-000000.tar, sample {key}, field vector: step shape \(4,\) but the spec says \(5,\)"
    with pytest.raises(DatasetError, match=expected):
        Dataset(dataset.url).read_shard(record)


@pytest.mark.parametrize("suffix", ["pyd", "pickle", "npy"])
def test_pickle_members_are_refused_never_decoded(dataset, tmp_path, suffix):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    template = dataset.records()[0]
    members = sample_members(dataset, template)
    key = template.samples[0].key
    if suffix == "npy":  # an object-dtype .npy holds a pickle inside
        buffer = io.BytesIO()
        np.save(buffer, np.array([Exploit()], dtype=object), allow_pickle=True)
        members[f"{key}.vector.npy"] = buffer.getvalue()
    else:
        members = {f"{key}.evil.{suffix}": pickle.dumps(Exploit()), **members}
    record = commit_raw_shard(dataset, "evil-000000", members, template)
    with pytest.raises(DatasetError, match="refused") as info:
        Dataset(dataset.url).read_shard(record)
    assert info.value.shard == "shards/evil-000000.tar" and info.value.key == key
    assert not marker.exists(), "a pickle payload was executed"


def test_writer_rejects_rows_that_break_the_spec_and_keeps_committed_data(tmp_path, card, spec):
    url = str(tmp_path / "ds")
    rng = np.random.default_rng(0)
    episode = random_episode(spec, 12, rng)
    with pytest.raises(SpecError, match=r"field 'image' is uint8\[8, 8, 3\], the spec says uint8\[16, 16, 3\]"):
        with EpisodeWriter(url, card) as writer:
            writer.add_episode(episode)
            writer.commit()
            bad = {k: v[0] for k, v in episode.items()}
            bad["image"] = np.zeros((8, 8, 3), np.uint8)
            writer.add_step(bad)
    records = Dataset(url).records()
    assert sum(r.steps for r in records) == 12


def test_validate_cli_exits_nonzero_and_names_the_damage(dataset):
    record = dataset.records()[2]
    path = Path(dataset.root) / record.shard_path
    data = bytearray(path.read_bytes())
    data[700] ^= 0x01
    path.write_bytes(bytes(data))
    ok = subprocess.run([sys.executable, "-m", "dreamstream.cli", "validate", dataset.url], capture_output=True,
                        text=True)
    assert ok.returncode == 1, ok.stdout + ok.stderr
    assert record.shard_path in ok.stdout and "sha256 mismatch" in ok.stdout
    assert "DAMAGED: 1 problem" in ok.stdout
