"""Property tests over the tar parser: any bytes, and any mutation of a good shard, end in samples or a
DatasetError naming the shard, never another exception or a hang; well-formed shards parse as tarfile
wrote them.

Each property runs a bounded number of examples (FUZZ: 200, no deadline, no example database written to
the working tree), a few seconds in all. A crash hypothesis finds becomes a named regression test
(tests/datasets/test_hostile_shards.py).
"""

from __future__ import annotations

import io
import tarfile

from crafted import archive, header, member, pax
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dreamstream.datasets import DatasetError
from dreamstream.datasets.tar import tar_samples

FUZZ = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

KEYS = st.text("0123456789abcdef-", min_size=1, max_size=20)
FIELDS = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)
SUFFIXES = st.sampled_from(["npy", "npy.zst", "json"])
FORMATS = st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])


def parse(data: bytes) -> list[dict]:
    """Every sample, or DatasetError; any other exception fails the property."""
    try:
        return list(tar_samples(data, "fuzz.tar"))
    except DatasetError as exc:
        assert exc.shard == "fuzz.tar"
        return []


def make_tar(members: list[tuple[str, bytes]], fmt: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@st.composite
def shards(draw) -> tuple[bytes, list[tuple[str, str, bytes]]]:
    """A well-formed shard from tarfile, and its (key, field.suffix, data) members in order."""
    keys = draw(st.lists(KEYS, min_size=1, max_size=4, unique=True))
    members = []
    for key in keys:
        for field in draw(st.lists(FIELDS, min_size=1, max_size=3, unique=True)):
            members.append((key, f"{field}.{draw(SUFFIXES)}", draw(st.binary(max_size=600))))
    data = make_tar([(f"{key}.{rest}", blob) for key, rest, blob in members], draw(FORMATS))
    return data, members


@st.composite
def mutated(draw, data: bytes) -> bytes:
    """`data` with a few bytes changed, a range overwritten, cut short or spliced."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "overwrite", "truncate", "splice"]))
        if not out:
            break
        at = draw(st.integers(0, len(out) - 1))
        if kind == "flip":
            out[at] ^= draw(st.integers(1, 255))
        elif kind == "overwrite":
            patch = draw(st.binary(min_size=1, max_size=16))
            out[at : at + len(patch)] = patch
        elif kind == "truncate":
            del out[at:]
        else:
            out[at:at] = draw(st.binary(max_size=64))
    return bytes(out)


@FUZZ
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_parse_or_fail_cleanly(data):
    parse(data)


@FUZZ
@given(st.data())
def test_mutated_shards_parse_or_fail_cleanly(data):
    shard, _ = data.draw(shards())
    parse(data.draw(mutated(shard)))


@FUZZ
@given(size_field=st.binary(min_size=12, max_size=12), kind=st.binary(min_size=1, max_size=1),
       name=st.binary(min_size=1, max_size=100), body=st.binary(max_size=1024))
def test_crafted_header_fields_parse_or_fail_cleanly(size_field, kind, name, body):
    parse(archive(header(name, kind=kind, size_field=size_field) + body))


@FUZZ
@given(records=st.binary(max_size=300), name=st.binary(max_size=40))
def test_crafted_pax_records_parse_or_fail_cleanly(records, name):
    parse(archive(pax(records), member(b"k.f.npy" + name, b"data")))


@FUZZ
@given(shards())
def test_well_formed_shards_parse_as_tarfile_wrote_them(shard):
    data, members = shard
    samples = parse(data)
    got = [(s["__key__"], rest, bytes(blob)) for s in samples for rest, blob in s.items() if rest != "__key__"]
    assert got == members
