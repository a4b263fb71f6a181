"""`dreamstream validate` on a Dask cluster finds and names damage: a missing shard, an orphan, a flipped
byte, a malformed commit record; a clean dataset passes; the exit code says which."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pipeline_helpers import make_episode, write_dataset

from dreamstream import cli
from dreamstream.datasets import Dataset
from dreamstream.pipelines.validate import validate_dataset


@pytest.fixture
def dataset(tmp_path, card, spec) -> Dataset:
    rng = np.random.default_rng(0)
    episodes = [make_episode(spec, rng, int(rng.integers(10, 40)), 1.0, writer=f"w{i % 2}") for i in range(12)]
    url = str(tmp_path / "ds")
    write_dataset(url, card, episodes, shard_bytes=15_000)
    return Dataset(url)


def test_clean_dataset_validates(dataset, cluster, scheduler_address, capsys):
    report = validate_dataset(dataset.url, cluster)
    assert report["ok"] and report["problems"] == []
    assert report["shards"] == len(dataset.record_names()) > 4
    assert report["steps"] == sum(r.steps for r in dataset.records())
    assert cli.main(["validate", dataset.url, "--scheduler", scheduler_address]) == 0
    assert "OK" in capsys.readouterr().out


def test_damage_is_found_and_named(dataset, cluster, scheduler_address, capsys):
    root = Path(dataset.root)
    records = dataset.records()
    missing, flipped, malformed = records[0], records[2], records[3]
    (root / missing.shard_path).unlink()
    data = bytearray((root / flipped.shard_path).read_bytes())
    data[len(data) // 2] ^= 0x01
    (root / flipped.shard_path).write_bytes(bytes(data))
    orphan = root / "shards" / "w9-000000.tar"
    orphan.write_bytes((root / records[1].shard_path).read_bytes())
    expected = {("shard", missing.shard_path), ("shard", flipped.shard_path), ("orphan", "shards/w9-000000.tar")}

    # the command through --scheduler, and the serial command, name the same problems; exit code 1
    assert cli.main(["validate", dataset.url, "--json", "--scheduler", scheduler_address]) == 1
    cluster_report = json.loads(capsys.readouterr().out)
    assert {(p["kind"], p["where"]) for p in cluster_report["problems"]} == expected
    assert cli.main(["validate", dataset.url]) == 1
    text = capsys.readouterr().out
    assert missing.shard_path in text and flipped.shard_path in text and "w9-000000.tar" in text
    assert "DAMAGED: 3 problem(s)" in text

    # a malformed commit record is named on its own; every other shard is still verified
    (root / malformed.record_path).write_text('{"format": "dreamstream.commit", "name": 3')
    report = validate_dataset(dataset.url, cluster)
    assert not report["ok"]
    found = {(p["kind"], p["where"]): p["message"] for p in report["problems"]}
    assert set(found) == expected | {("record", malformed.record_path)}
    assert "missing" in found[("shard", missing.shard_path)]
    assert "sha256 mismatch" in found[("shard", flipped.shard_path)]
    assert "malformed" in found[("record", malformed.record_path)]
    assert "no commit record" in found[("orphan", "shards/w9-000000.tar")]
    assert report["shards"] == len(records)
    good = [r for r in records if r not in (missing, flipped, malformed)]
    assert report["steps"] == sum(r.steps for r in good)
