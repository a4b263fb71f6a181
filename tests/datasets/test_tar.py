"""The one tar parser agrees with Python's tarfile on every format, and refuses what it must."""

from __future__ import annotations

import io
import tarfile

import pytest

from dreamstream.datasets import DatasetError
from dreamstream.datasets.tar import tar_members, tar_samples


def make_tar(members: list[tuple[str, bytes]], fmt: int, mtime: float = 1.5) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), mtime
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


MEMBERS = [("k1.meta.json", b'{"a": 1}'), ("k1.image.npy.zst", bytes(range(256)) * 40),
           ("k2.meta.json", b"{}"), ("k2.reward.npy", b"x" * 513),
           ("d" * 120 + ".long.npy", b"long name"), ("empty.x.npy", b"")]


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_members_match_tarfile(fmt):
    members = MEMBERS if fmt != tarfile.USTAR_FORMAT else [m for m in MEMBERS if len(m[0]) < 100]
    data = make_tar(members, fmt, mtime=1.5 if fmt == tarfile.PAX_FORMAT else 1)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        expected = [(info.name, tar.extractfile(info).read()) for info in tar]
    got = [(name, bytes(contents)) for name, contents in tar_members(data)]
    assert got == expected == members


def test_samples_group_members_by_key_and_keep_json_as_bytes():
    samples = list(tar_samples(make_tar(MEMBERS[:4], tarfile.PAX_FORMAT)))
    assert [s["__key__"] for s in samples] == ["k1", "k2"]
    assert samples[0]["meta.json"] == b'{"a": 1}' and isinstance(samples[0]["meta.json"], bytes)
    assert isinstance(samples[0]["image.npy.zst"], memoryview)  # large members are views, not copies
    assert bytes(samples[0]["image.npy.zst"]) == MEMBERS[1][1]


def test_refuses_links_directories_truncation_and_bad_headers():
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("k.link.npy")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(DatasetError, match="not a regular file"):
        list(tar_members(buffer.getvalue()))
    data = make_tar(MEMBERS[:2], tarfile.PAX_FORMAT)
    with pytest.raises(DatasetError, match="truncated|past the end of the object"):
        list(tar_members(data[: len(data) // 2]))
    damaged = bytearray(data)
    damaged[1024 + 10] ^= 0xFF  # a byte of the second header's name
    with pytest.raises(DatasetError, match="checksum"):
        list(tar_members(bytes(damaged)))
    with pytest.raises(DatasetError, match="repeats field 'meta'"):
        list(tar_samples(make_tar([MEMBERS[0], MEMBERS[0]], tarfile.PAX_FORMAT)))
