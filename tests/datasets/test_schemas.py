"""Crafted commit records, cards and meta.json values: each is refused with a DatasetError naming the file
and the key, within a small memory and time bound (tests/bounded.py), and never reads outside ROOT."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from bounded import bounded

from dreamstream import cli
from dreamstream.datasets import Dataset, DatasetError, EpisodeWriter, WriterConfig
from dreamstream.datasets.card import CARD_NAME, MAX_CARD_BYTES, parse_card
from dreamstream.datasets.records import MAX_RECORD_BYTES, MAX_SAMPLE_STEPS, parse_meta, parse_record
from dreamstream.datasets.synthetic import random_episode

MEMORY_MB, SECONDS = 64, 5


@pytest.fixture
def dataset(tmp_path, card, spec) -> Dataset:
    """One committed shard of two samples."""
    url = str(tmp_path / "ds")
    with EpisodeWriter(url, card, WriterConfig(chunk_steps=10), writer_id="w0") as writer:
        writer.add_episode(random_episode(spec, 15, np.random.default_rng(0)))
    return Dataset(url)


def good_record(dataset: Dataset) -> dict:
    name = dataset.record_names()[0]
    return json.loads((Path(dataset.root) / "index" / f"{name}.json").read_bytes())


def good_card(dataset: Dataset) -> dict:
    return json.loads((Path(dataset.root) / CARD_NAME).read_bytes())


def put(data: dict, path: str, value) -> None:
    """Set `data` at a key path such as `samples[0].steps` (no value: delete the key)."""
    *parents, last = path.replace("[", ".").replace("]", "").split(".")
    for part in parents:
        data = data[int(part)] if isinstance(data, list) else data[part]
    if value is DELETE:
        del data[last]
    elif isinstance(data, list):
        data[int(last)] = value
    else:
        data[last] = value


DELETE = object()

# (key path, crafted value, the key the error must name)
RECORD_CASES = [
    ("version", True, "version"),
    ("version", 1.0, "version"),
    ("format", "dreamstream.other", "format"),
    ("bytes", -1, "bytes"),
    ("bytes", "4096", "bytes"),
    ("bytes", 4096.0, "bytes"),
    ("sha256", "../../etc/passwd", "sha256"),
    ("writer", DELETE, "writer"),
    ("created", float("nan"), "created"),
    ("samples", [], "samples"),
    ("samples", {"0": {}}, "samples"),
    ("samples[0]", [1, 2], "samples[0]"),
    ("samples[0].steps", 0, "samples[0].steps"),
    ("samples[0].steps", -5, "samples[0].steps"),
    ("samples[0].steps", 10**12, "samples[0].steps"),
    ("samples[0].steps", MAX_SAMPLE_STEPS + 1, "samples[0].steps"),
    ("samples[0].steps", True, "samples[0].steps"),
    ("samples[0].steps", "10", "samples[0].steps"),
    ("samples[0].steps", 10.0, "samples[0].steps"),
    ("samples[1].chunk", -1, "samples[1].chunk"),
    ("samples[0].reward_sum", float("inf"), "samples[0].reward_sum"),
    ("samples[0].is_last", 0, "samples[0].is_last"),
    ("samples[1].is_terminal", "yes", "samples[1].is_terminal"),
    ("samples[0].key", "other-0000", "samples[0].key"),
    ("samples[0].episode", "../x", "samples[0].episode"),
    ("samples[0].policy_version", -1, "samples[0].policy_version"),
    ("samples[0].policy", "p" * 10_000, "samples[0].policy"),
    ("samples[0].created", None, "samples[0].created"),
    ("samples[0].start", DELETE, "samples[0].start"),
]


@pytest.mark.parametrize(("path", "value", "key"), RECORD_CASES, ids=[f"{c[0]}={c[1]!r:.20}" for c in RECORD_CASES])
def test_crafted_record_value_is_named(dataset, path, value, key):
    record = good_record(dataset)
    put(record, path, value)
    name = dataset.record_names()[0]
    (Path(dataset.root) / "index" / f"{name}.json").write_text(json.dumps(record))
    with bounded(MEMORY_MB, SECONDS), pytest.raises(DatasetError) as error:
        dataset.records()
    assert f"index/{name}.json" in str(error.value) and f"key '{key}'" in str(error.value)


def write_record(dataset: Dataset, name: str, record) -> None:
    raw = record if isinstance(record, bytes) else json.dumps(record).encode()
    (Path(dataset.root) / "index" / f"{name}.json").write_bytes(raw)


@pytest.mark.parametrize("name", ["../../outside", "a/b", "s3:x", "x.y"])
def test_shard_name_outside_root_is_refused(dataset, tmp_path, name):
    """A record naming a shard outside ROOT never leads a reader there (it read /outside.tar before)."""
    outside = tmp_path / "outside.tar"
    outside.write_bytes((Path(dataset.root) / dataset.records()[0].shard_path).read_bytes())
    record = good_record(dataset)
    record.update(name=name, shard=f"shards/{name}.tar")
    write_record(dataset, "w9-000000", record)
    with bounded(MEMORY_MB, SECONDS), pytest.raises(DatasetError, match=r"index/w9-000000\.json.*key 'name'"):
        dataset.records(["w9-000000"])


def test_validate_reports_a_record_pointing_outside_root(dataset, tmp_path, capsys):
    """`validate` used to read ../../outside.tar through such a record and call the dataset OK."""
    (tmp_path / "outside.tar").write_bytes((Path(dataset.root) / dataset.records()[0].shard_path).read_bytes())
    record = good_record(dataset)
    record.update(name="../../outside", shard="shards/../../outside.tar")
    write_record(dataset, "w9-000000", record)
    assert cli.main(["validate", dataset.url]) == 1
    out = capsys.readouterr().out
    assert "index/w9-000000.json" in out and "key 'name'" in out and "OK" not in out


def test_shard_path_must_be_the_records_own(dataset):
    record = good_record(dataset)
    record["shard"] = "../../other/shards/x.tar"
    write_record(dataset, record["name"], record)
    with pytest.raises(DatasetError, match=r"key 'shard'.*expected 'shards/w0-000000\.tar'"):
        dataset.records()


def test_record_name_must_be_its_file_name(dataset):
    """A copy of another writer's record under a new file name is refused (it would count the shard twice)."""
    write_record(dataset, "w1-000000", good_record(dataset))
    with pytest.raises(DatasetError, match=r"index/w1-000000\.json.*key 'name'.*differs from the file name"):
        dataset.records(["w1-000000"])


def test_steps_beyond_the_shard_size_are_refused(dataset):
    """10^12 steps spread over samples within the per-sample bound still cannot fit a shard's bytes."""
    record = good_record(dataset)
    template = record["samples"][0]
    record["samples"] = [{**template, "episode": f"e{i}", "key": f"e{i}-0000", "steps": MAX_SAMPLE_STEPS}
                         for i in range(20)]
    write_record(dataset, record["name"], record)
    with bounded(MEMORY_MB, SECONDS), pytest.raises(DatasetError, match=r"key 'samples'.*steps in total"):
        dataset.records()


def test_duplicate_sample_keys_are_refused(dataset):
    record = good_record(dataset)
    record["samples"].append(copy.deepcopy(record["samples"][0]))
    write_record(dataset, record["name"], record)
    with pytest.raises(DatasetError, match=r"key 'samples'.*appears twice"):
        dataset.records()


RAW_CASES = {
    "deep-array": b"[" * 200_000 + b"]" * 200_000,
    "deep-object": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "unbalanced": b"[" * 1000,
    "oversize": b" " * (MAX_RECORD_BYTES + 1),
    "not-utf8": b'{"format": "\xff\xfe"}',
    "huge-int": b'{"format": "dreamstream.commit", "version": ' + b"9" * 100_000 + b"}",
    "top-level-list": b"[1, 2, 3]",
    "empty": b"",
}


@pytest.mark.parametrize("case", list(RAW_CASES))
def test_crafted_record_bytes_are_refused(dataset, case):
    name = dataset.record_names()[0]
    write_record(dataset, name, RAW_CASES[case])
    with bounded(MEMORY_MB, SECONDS) as usage, pytest.raises(DatasetError, match=rf"index/{name}\.json"):
        dataset.records()
    assert usage.seconds < SECONDS


def test_a_full_size_record_of_brackets_is_refused_in_linear_time(dataset):
    """Regression: the first depth check removed innermost pairs 32 times over the file (4 s for 16 MiB)."""
    name = dataset.record_names()[0]
    write_record(dataset, name, b"[" * (MAX_RECORD_BYTES // 2) + b"]" * (MAX_RECORD_BYTES // 2))
    with bounded(MEMORY_MB, 2) as usage, pytest.raises(DatasetError, match="nested deeper than 32"):
        dataset.records()
    assert usage.seconds < 1.0


def test_brackets_inside_strings_do_not_count_as_nesting():
    raw = json.dumps({"format": "x", "text": "[" * 10_000 + '\\"{' * 100}).encode()
    with pytest.raises(DatasetError, match="key 'format'"):  # parsed, then refused for its content only
        parse_record(raw, "x")


# -- cards -------------------------------------------------------------------------------------------

CARD_CASES = [
    ("version", True, "version"),
    ("version", 1.0, "version"),
    ("version", "1", "version"),
    ("version", 2, "version"),
    ("env", DELETE, "env"),
    ("env.id", 5, "env.id"),
    ("env.config", [1], "env.config"),
    ("lineage", [1, 2], "lineage"),
    ("description", "d" * 70_000, "description"),
    ("creator", "me", "creator"),
    ("spec.observations", {}, "spec.observations"),
    ("spec.observations.image.dtype", "object", "spec.observations.image"),
    ("spec.observations.image.dtype", "O", "spec.observations.image"),
    ("spec.observations.vector.dtype", "<U8", "spec.observations.vector"),
    ("spec.observations.vector.dtype", "float128", "spec.observations.vector"),
    ("spec.observations.vector.shape", [0], "spec.observations.vector.shape[0]"),
    ("spec.observations.vector.shape", [-1], "spec.observations.vector.shape[0]"),
    ("spec.observations.vector.shape", [10**9], "spec.observations.vector.shape[0]"),
    ("spec.observations.vector.shape", [True], "spec.observations.vector.shape[0]"),
    ("spec.observations.vector.shape", [5.0], "spec.observations.vector.shape[0]"),
    ("spec.observations.vector.shape", [2] * 9, "spec.observations.vector.shape"),
    ("spec.observations.vector.shape", [65536, 65536], "spec.observations.vector"),
    ("spec.observations.vector.shape", "5", "spec.observations.vector.shape"),
    ("spec.observations.image.dtype", "float32", "spec.observations.image"),
    ("spec.observations.image.classes", [3, 3, 3], "spec.observations.image"),
    ("spec.observations.grid.classes", [11, 6], "spec.observations.grid"),
    ("spec.observations.grid.classes", [11, 6, 0], "spec.observations.grid.classes[2]"),
    ("spec.observations.grid.dtype", "float32", "spec.observations.grid"),
    ("spec.observations.vector.kind", "text", "spec.observations.vector"),
    ("spec.observations.action", {"shape": [], "dtype": "int64", "kind": "scalar"}, "spec"),
    ("spec.observations.bad-name", {"shape": [], "dtype": "int64", "kind": "scalar"}, "spec.observations"),
    ("spec.action.n", 0, "spec.action.n"),
    ("spec.action.n", "7", "spec.action.n"),
    ("spec.action.kind", "weird", "spec.action.kind"),
    ("spec.action", {"kind": "continuous", "shape": [2], "low": [0.0], "high": [1.0, 1.0]}, "spec.action.low"),
    ("spec.action", {"kind": "continuous", "shape": [1], "low": [float("nan")], "high": [1.0]},
     "spec.action.low[0]"),
]


@pytest.mark.parametrize(("path", "value", "key"), CARD_CASES, ids=[f"{c[0]}={c[1]!r:.20}" for c in CARD_CASES])
def test_crafted_card_value_is_named(dataset, path, value, key):
    card = good_card(dataset)
    put(card, path, value)
    (Path(dataset.root) / CARD_NAME).write_text(json.dumps(card))
    with bounded(MEMORY_MB, SECONDS), pytest.raises(DatasetError) as error:
        _ = Dataset(dataset.url).card
    message = str(error.value)
    assert message.startswith(f"dataset {dataset.url}: {CARD_NAME} is malformed") and f"key '{key}'" in message


def test_continuous_action_with_infinite_bounds_is_a_valid_card(dataset):
    card = good_card(dataset)
    card["spec"]["action"] = {"kind": "continuous", "shape": [2], "low": [float("-inf"), 0],
                              "high": [float("inf"), 1.5]}
    parsed = parse_card(json.dumps(card).encode())
    assert parsed.spec.action.low == (float("-inf"), 0.0)


@pytest.mark.parametrize("case", ["deep-config", "oversize"])
def test_crafted_card_bytes_are_refused(dataset, case):
    card = good_card(dataset)
    if case == "deep-config":
        raw = json.dumps(card).replace('"config": {', '"config": {"x":' + "[" * 50_000 + "]" * 50_000 + ",", 1)
        raw = raw.encode()
    else:
        raw = json.dumps({**card, "description": "d" * MAX_CARD_BYTES}).encode()
    (Path(dataset.root) / CARD_NAME).write_bytes(raw)
    with bounded(MEMORY_MB, SECONDS), pytest.raises(DatasetError, match=rf"dataset .*{CARD_NAME} is malformed"):
        _ = Dataset(dataset.url).card


# -- meta.json -----------------------------------------------------------------------------------------

def good_meta(dataset: Dataset) -> dict:
    row = dataset.records()[0].samples[0]
    return {**row.to_json(), "env": "Test-v0", "writer": "w0", "format_version": 1}


@pytest.mark.parametrize(("key", "value"), [("chunk", "0"), ("steps", 10.0), ("is_first", 1),
                                            ("format_version", True), ("reward_sum", None), ("steps", -1)])
def test_crafted_meta_value_is_named(dataset, key, value):
    meta = {**good_meta(dataset), key: value}
    with bounded(MEMORY_MB, SECONDS), pytest.raises(DatasetError) as error:
        parse_meta(json.dumps(meta).encode(), "shards/w0-000000.tar", meta["key"])
    message = str(error.value)
    assert "shard shards/w0-000000.tar" in message and f"key '{key}'" in message and "meta.json" in message


def test_deeply_nested_meta_is_refused():
    with bounded(MEMORY_MB, SECONDS), pytest.raises(DatasetError, match="meta.json is malformed.*nested deeper"):
        parse_meta(b"[" * 30_000 + b"]" * 30_000, "shards/w0-000000.tar", "e-0000")
