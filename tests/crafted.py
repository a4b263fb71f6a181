"""Hostile shards for tests, byte by byte: tar headers with any field value, zstd frames written by hand,
and commits whose record matches the crafted bytes (size and sha256), so that every check after the
checksum runs on them."""

from __future__ import annotations

import hashlib
import io
import struct
import tarfile
from pathlib import Path

from dreamstream.datasets import CommitRecord, Dataset

Members = list[tuple[str, bytes]]


def header(name: str | bytes, size: int = 0, kind: bytes = b"0", size_field: bytes | None = None,
           prefix: bytes = b"") -> bytes:
    """A ustar header block with a correct checksum; `size_field` replaces the encoded size verbatim."""
    block = bytearray(512)
    raw = name.encode() if isinstance(name, str) else name
    block[0 : len(raw)] = raw
    block[100:108] = b"0000644\x00"
    block[108:116] = block[116:124] = b"0000000\x00"
    block[124:136] = size_field if size_field is not None else b"%011o\x00" % size
    block[136:148] = b"00000000000\x00"
    block[148:156] = b" " * 8
    block[156:157] = kind
    block[257:265] = b"ustar\x0000"
    block[345 : 345 + len(prefix)] = prefix
    block[148:156] = b"%06o\x00 " % sum(block)
    return bytes(block)


def member(name: str | bytes, data: bytes, kind: bytes = b"0", **kwargs) -> bytes:
    """A header and its data, padded to whole blocks."""
    return header(name, len(data), kind, **kwargs) + data + bytes(-len(data) % 512)


def pax(records: bytes) -> bytes:
    """A pax extended header ('x') holding `records` verbatim."""
    return member("././@PaxHeader", records, kind=b"x")


def archive(*parts: bytes) -> bytes:
    """Members (each from `member`/`pax` or raw blocks) and the end-of-archive marker."""
    return b"".join(parts) + bytes(1024)


def tar_of(members: Members) -> bytes:
    return archive(*(member(name, data) for name, data in members))


def members_of(data: bytes) -> Members:
    """(name, bytes) of a well-formed shard, read with Python's tarfile."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [(info.name, tar.extractfile(info).read()) for info in tar]


def commit(dataset: Dataset, name: str, data: bytes, template: CommitRecord) -> CommitRecord:
    """Commit `data` as shard `name` of a local dataset, its record listing `template`'s samples with the
    crafted bytes' size and sha256."""
    record = CommitRecord(name=name, bytes=len(data), sha256=hashlib.sha256(data).hexdigest(), writer="crafted",
                          created=template.created, samples=template.samples)
    root = Path(dataset.root)
    (root / record.shard_path).write_bytes(data)
    (root / record.record_path).write_bytes(record.dumps())
    return record


def zstd_rle(total: int, declared: int | None = None) -> bytes:
    """A zstd frame of RLE blocks that expands to `total` zero bytes from about total / 32768 bytes; the
    header declares `declared` as the content size, or no size at all."""
    block = 128 * 2**10
    out = bytearray(b"\x28\xb5\x2f\xfd")
    out += bytes([0x00, 0x38]) if declared is None else bytes([0xC0, 0x38]) + struct.pack("<Q", declared)
    sizes = [block] * (total // block) + ([total % block] if total % block else [])
    for i, size in enumerate(sizes):
        last = int(i == len(sizes) - 1)
        out += (last | 1 << 1 | size << 3).to_bytes(3, "little") + b"\x00"
    return bytes(out)
