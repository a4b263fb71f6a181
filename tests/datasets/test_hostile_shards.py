"""Crafted shards (a few KB each, committed with a record whose size and sha256 match) are refused by
`validate` and by the loader alike, with a DatasetError naming the shard, sample and field, within a small
memory and time bound (tests/bounded.py): nothing a header says is allocated before it is checked."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from bounded import bounded
from crafted import Members, archive, commit, header, member, members_of, pax, tar_of, zstd_rle

from dreamstream.datasets import CommitRecord, Dataset, DatasetError, EpisodeWriter, WriterConfig
from dreamstream.datasets.loader.fetch import FetchCounters, FetchPolicy, fetch_shard
from dreamstream.datasets.reader import decode_chunk
from dreamstream.datasets.synthetic import random_episode
from dreamstream.datasets.verify import verify_shard

MEMORY_MB, SECONDS = 64, 10
NAME = "crafted-000000"


@pytest.fixture
def base(tmp_path, card, spec) -> tuple[Dataset, CommitRecord, Members]:
    """A dataset with one good shard of two samples (10 and 5 rows), its record and its members."""
    url = str(tmp_path / "ds")
    with EpisodeWriter(url, card, WriterConfig(chunk_steps=10), writer_id="w0") as writer:
        writer.add_episode(random_episode(spec, 15, np.random.default_rng(0)))
    dataset = Dataset(url)
    record = dataset.records()[0]
    return dataset, record, members_of(dataset.shard_bytes(record))


def npy_header_only(shape: tuple[int, ...], descr: str = "<f4") -> bytes:
    """A `.npy` header claiming `shape`, with no data after it."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": descr, "fortran_order": False, "shape": shape})
    return out.getvalue()


def replace(members: Members, suffix: str, data: bytes, key: str) -> Members:
    """`members` with the member `<key>.<suffix>` holding `data`."""
    return [(name, data if name == f"{key}.{suffix}" else old) for name, old in members]


def meta_with(members: Members, key: str, **values) -> bytes:
    meta = json.loads(dict(members)[f"{key}.meta.json"])
    meta.update(values)
    return json.dumps(meta).encode()


def moved_to_end(members: Members, name: str) -> Members:
    return [m for m in members if m[0] != name] + [m for m in members if m[0] == name]


def doubled(members: Members, name: str) -> Members:
    return [m for pair in members for m in ([pair, pair] if pair[0] == name else [pair])]


# name -> (crafted shard from (members, first key), pattern the error must match, field it must name)
Craft = Callable[[Members, str], bytes]
CASES: dict[str, tuple[Craft, str, str | None]] = {
    "negative size": (lambda m, k: archive(header(f"{k}.reward.npy", size_field=b"-0001000000\x00"),
                                           *(member(n, d) for n, d in m)), "size field .* not a non-negative", None),
    "negative base-256 size": (lambda m, k: archive(header(f"{k}.reward.npy", size_field=b"\xff" * 12)),
                               "size field .* not a non-negative", None),
    "size past the object": (lambda m, k: archive(header(f"{k}.reward.npy", size=2**32), b"x" * 512),
                             "runs past the end of the object", None),
    "directory in the name": (lambda m, k: tar_of([(f"sub/{n}", d) for n, d in m]), "has a directory part", None),
    "ustar prefix": (lambda m, k: archive(*(member(n, d, prefix=b"sub") for n, d in m)), "has a directory part",
                     None),
    "directory member": (lambda m, k: archive(member(f"{k}.dir.npy", b"", kind=b"5"), *(member(n, d) for n, d in m)),
                         "not a regular file", None),
    "symlink member": (lambda m, k: archive(member(f"{k}.link.npy", b"", kind=b"2"), *(member(n, d) for n, d in m)),
                       "not a regular file", None),
    "hard link member": (lambda m, k: archive(member(f"{k}.link.npy", b"", kind=b"1"),
                                              *(member(n, d) for n, d in m)), "not a regular file", None),
    "fifo member": (lambda m, k: archive(member(f"{k}.fifo.npy", b"", kind=b"6")), "not a regular file", None),
    "non-adjacent repeated key": (lambda m, k: tar_of(moved_to_end(m, f"{k}.reward.npy")),
                                  "sample key appears again", None),
    "duplicate member": (lambda m, k: tar_of(doubled(m, f"{k}.reward.npy")), "repeats field 'reward'", "reward"),
    "same field twice, two suffixes": (lambda m, k: tar_of([(f"{k}.image.npy", b"")] + m),
                                       "repeats field 'image'", "image"),
    "huge pax length": (lambda m, k: archive(pax(b"99999999999999999999 path=x\n"), *(member(n, d) for n, d in m)),
                        "pax record .* length outside its header", None),
    "pax length with 30 digits": (lambda m, k: archive(pax(b"9" * 30 + b" path=x\n")),
                                  "does not start with a decimal length", None),
    "pax size past the object": (lambda m, k: archive(pax(b"20 size=99999999999\n"), member(f"{k}.reward.npy", b"")),
                                 "runs past the end of the object", None),
    "npy negative dims": (lambda m, k: tar_of(replace(m, "vector.npy", npy_header_only((-10, 5)), k)),
                          "-10 rows, the commit record says 10", "vector"),
    "npy overflowing dims": (lambda m, k: tar_of(replace(m, "vector.npy", npy_header_only((10, 2**62)), k)),
                             r"step shape \(4611686018427387904,\) but the spec says \(5,\)", "vector"),
    "npy rows whose bytes wrap int64": (lambda m, k: tar_of(replace(m, "vector.npy", npy_header_only((2**62, 5)), k)),
                                        "4611686018427387904 rows, the commit record says 10", "vector"),
    "npy shape is not the spec's": (lambda m, k: tar_of(replace(m, "vector.npy", npy_header_only((10, 4)), k)),
                                    r"step shape \(4,\) but the spec says \(5,\)", "vector"),
    "npy dtype is not the spec's": (lambda m, k: tar_of(replace(m, "vector.npy", npy_header_only((10, 5), "<f8"), k)),
                                    "dtype float64 but the spec says float32", "vector"),
    "zstd bomb (32 KB to 1 GiB)": (lambda m, k: tar_of(replace(m, "image.npy.zst", zstd_rle(2**30), k)),
                                   "expands past the 24064 bytes its rows can hold", "image"),
    "zstd frame declaring 40 GiB": (lambda m, k: tar_of(replace(m, "image.npy.zst", zstd_rle(4096, 40 * 2**30), k)),
                                    "declares 42949672960 bytes, more than the 24064", "image"),
    "deep JSON in meta.json": (lambda m, k: tar_of(replace(m, "meta.json", b"[" * 5000 + b"]" * 5000, k)),
                               "meta.json is malformed: nested deeper", "meta"),
    "meta.json steps of the wrong type": (lambda m, k: tar_of(replace(m, "meta.json", meta_with(m, k, steps="10"), k)),
                                          "meta.json is malformed: key 'steps'", "meta"),
    "meta.json that is a list": (lambda m, k: tar_of(replace(m, "meta.json", b"[1, 2]", k)),
                                 "meta.json is malformed", "meta"),
    "meta.json over its byte budget": (lambda m, k: tar_of(replace(m, "meta.json", b" " * 2**16 + b"{}", k)),
                                       "meta.json is malformed: .* bytes, more than", "meta"),
}


def loader_verdict(dataset: Dataset, record: CommitRecord) -> DatasetError | None:
    """What the loader makes of the shard: its fetch (read, verify, split) and the decode of every chunk."""
    try:
        samples = fetch_shard(dataset, record, FetchPolicy(retries=0, on_error="raise"), FetchCounters())
        for row in record.samples:
            decode_chunk(samples[row.key], row, dataset.spec, record.shard_path)
    except DatasetError as exc:
        return exc
    return None


def verdicts(dataset: Dataset, record: CommitRecord, label: str) -> tuple[str, DatasetError]:
    """(validate's problem message, the loader's error), each run under the memory and time bound."""
    with bounded(MEMORY_MB, SECONDS) as usage:
        steps, problems = verify_shard(Dataset(dataset.url), record)
    print(f"{label}: validate peak {usage.peak_bytes / 2**20:.2f} MiB, {usage.seconds * 1000:.1f} ms")
    with bounded(MEMORY_MB, SECONDS) as usage:
        error = loader_verdict(Dataset(dataset.url), record)
    print(f"{label}: loader peak {usage.peak_bytes / 2**20:.2f} MiB, {usage.seconds * 1000:.1f} ms")
    assert problems and error is not None, f"validate: {problems}, loader: {error}"
    assert [p.where for p in problems] == [record.shard_path] and error.shard == record.shard_path
    return problems[0].message, error


@pytest.mark.parametrize("case", CASES)
def test_crafted_shard_is_refused_by_validate_and_the_loader_alike(base, case):
    dataset, template, members = base
    craft, pattern, field = CASES[case]
    key = template.samples[0].key
    record = commit(dataset, NAME, craft(members, key), template)
    assert record.bytes < 2**17  # a few KB of crafted input (the meta.json budget case: 64 KB)
    message, error = verdicts(dataset, record, case)
    assert re.search(pattern, message) and re.search(pattern, error.reason), (message, error)
    if field is not None:  # the location: the sample and the field
        assert message.startswith(f"sample {key}, field {field}: ")
        assert (error.key, error.field) == (key, field)
        assert f"shard {record.shard_path}, sample {key}, field {field}: " in str(error)


def test_good_shard_is_accepted_by_both(base):
    dataset, template, members = base
    record = commit(dataset, NAME, tar_of(members), template)
    assert verify_shard(dataset, record) == (template.steps, [])
    assert loader_verdict(dataset, record) is None


def test_shard_far_larger_than_its_record_is_not_read(base):
    dataset, template, members = base
    record = commit(dataset, NAME, tar_of(members), template)
    with open(Path(dataset.root) / record.shard_path, "r+b") as f:
        f.truncate(2**30)  # sparse: 1 GiB that a reader must not load
    message, error = verdicts(dataset, record, "shard larger than its record")
    pattern = f"shard has {2**30} bytes, the commit record says {record.bytes}"
    assert pattern in message and pattern in error.reason
    counters = FetchCounters()  # not retried: the object will not change
    assert fetch_shard(dataset, record, FetchPolicy(retries=3, backoff_s=0, on_error="skip"), counters) is None
    assert counters.take() == {"shards_skipped": 1}


def test_bad_checksum_is_refused_by_both(base):
    dataset, template, members = base
    record = commit(dataset, NAME, tar_of(members), template)
    path = Path(dataset.root) / record.shard_path
    data = bytearray(path.read_bytes())
    data[700] ^= 0xFF
    path.write_bytes(bytes(data))
    message, error = verdicts(dataset, record, "bad checksum")
    assert "sha256 mismatch" in message and "sha256 mismatch" in error.reason
