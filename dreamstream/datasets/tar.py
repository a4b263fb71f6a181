"""The one tar/sample parser: every reader (Dataset, `validate`, the loader, Dask tasks) splits shards here,
so all of them accept and refuse the same shards.

Zero-copy and written by hand: webdataset's `tar_file_expander` + `group_by_keys` go through Python's
`tarfile`, which parses each header in Python and copies every member out (5-8x slower on our shards).
The bytes are untrusted (docs/format.md, "Strict parsing"): every size is checked against the object
before it is used, every step moves on by at least one 512-byte block, and anything outside these rules
is a DatasetError naming the shard (and the sample and field where known):

- members are regular files (types '0', NUL, '7'); pax extended headers ('x') may set `path` and `size`
  of the next member, global pax headers ('g') are ignored, GNU long names ('L') are read; any other type
  (directory, link, device, fifo, sparse, ...) is refused;
- a name is `<key>.<field>.<suffix>`, each part non-empty, with no directory part ('/' or '\\', or a
  ustar prefix), no leading dot and no control characters;
- a sample's members are adjacent, each field appears once in it, and a key never comes back later;
- numbers are plain octal or non-negative GNU base-256; pax records are `<decimal length> key=value\\n`
  inside their header; pax and long-name headers hold at most MAX_EXTENDED bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from dreamstream.datasets.errors import DatasetError

BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)
REGULAR = (b"0", b"\x00", b"7")
MAX_EXTENDED = 64 * 2**10
"""Largest pax or GNU long-name header read (member names are a few dozen bytes)."""
SMALL = 4096
"""Members smaller than this (and JSON) are copied out as bytes; larger ones stay views of the shard."""

_OCTAL = re.compile(rb"[0-7]+")
_DECIMAL = re.compile(rb"[0-9]{1,20}")
_BAD_NAME_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def _fail(message: str, shard: str, offset: int) -> DatasetError:
    return DatasetError(f"tar header at offset {offset}: {message}", shard=shard)


def _number(field: bytes, what: str, shard: str, offset: int) -> int:
    """A non-negative header number: octal digits (space/NUL padded) or GNU base-256 (first byte 0x80)."""
    if field[:1] == b"\x80":
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\x00", 1)[0].strip(b" ")
    if not text:
        return 0
    if not _OCTAL.fullmatch(text):
        raise _fail(f"{what} field {field!r} is not a non-negative octal number", shard, offset)
    return int(text, 8)


def _check_header(raw: bytes, shard: str, offset: int) -> None:
    stored = _number(raw[148:156], "checksum", shard, offset)
    if stored != sum(raw[:148]) + sum(raw[156:]) + 8 * 32:
        raise _fail("checksum mismatch (not a tar header)", shard, offset)


def _text(data: bytes, what: str, shard: str, offset: int) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(f"{what} is not UTF-8: {exc}", shard, offset) from None


def _extended(contents: memoryview, kind: bytes, shard: str, offset: int) -> bytes:
    if len(contents) > MAX_EXTENDED:
        raise _fail(f"extended header of type {kind!r} holds {len(contents)} bytes, more than {MAX_EXTENDED}",
                    shard, offset)
    return contents.tobytes()


def _pax(raw: bytes, shard: str, offset: int) -> dict[str, str]:
    """Records `<len> <key>=<value>\\n` of a pax header; each must lie inside the header and end in a newline."""
    out, pos = {}, 0
    while pos < len(raw):
        space = raw.find(b" ", pos, pos + 21)
        if space < 0 or not _DECIMAL.fullmatch(raw[pos:space]):
            raise _fail(f"pax record at {pos} does not start with a decimal length", shard, offset)
        end = pos + int(raw[pos:space])
        if not space + 2 < end <= len(raw) or raw[end - 1] != 0x0A:
            raise _fail(f"pax record at {pos} has a length outside its header", shard, offset)
        key, equals, value = raw[space + 1 : end - 1].partition(b"=")
        if not equals or not key:
            raise _fail(f"pax record at {pos} is not key=value", shard, offset)
        out[_text(key, "pax key", shard, offset)] = _text(value, "pax value", shard, offset)
        pos = end
    return out


def _pax_size(pax: dict[str, str], shard: str, offset: int) -> int:
    size = pax["size"].encode()
    if not _DECIMAL.fullmatch(size):
        raise _fail(f"pax size {pax['size'][:40]!r} is not a non-negative decimal number", shard, offset)
    return int(size)


def _header_name(raw: bytes, shard: str, offset: int) -> str:
    name = raw[0:100].split(b"\x00", 1)[0]
    if raw[257:263] == b"ustar\x00":  # POSIX ustar: a prefix is a directory part of the name
        prefix = raw[345:500].split(b"\x00", 1)[0]
        if prefix:
            name = prefix + b"/" + name
    return _text(name, "member name", shard, offset)


def check_name(name: str, shard: str = "") -> tuple[str, str, str]:
    """-> (key, field, suffix) of a member name `<key>.<field>.<suffix>`, or DatasetError."""
    key, _, rest = name.partition(".")
    field, _, suffix = rest.partition(".")
    if "/" in name or "\\" in name:
        raise DatasetError(f"member name {name!r} has a directory part", shard=shard, key=key)
    if not (key and field and suffix) or _BAD_NAME_CHARS.search(name):
        raise DatasetError(f"member name {name!r} is not <key>.<field>.<suffix>", shard=shard, key=key)
    return key, field, suffix


def tar_members(data: bytes | memoryview, shard: str = "") -> Iterator[tuple[str, memoryview]]:
    """(name, contents) of every member, in order, the contents as views of `data` (no copy)."""
    view = memoryview(data)
    pos, size = 0, len(view)
    pax: dict[str, str] = {}
    long_name: str | None = None
    while True:
        if pos + BLOCK > size:
            raise _fail("truncated: no end-of-archive marker", shard, pos)
        raw = view[pos : pos + BLOCK].tobytes()
        if raw == ZERO_BLOCK:  # end of archive (two zero blocks; one suffices to stop)
            if pax or long_name is not None:
                raise _fail("extended header with no member after it", shard, pos)
            return
        _check_header(raw, shard, pos)
        kind = raw[156:157]
        length = _number(raw[124:136], "size", shard, pos)
        if kind in REGULAR and "size" in pax:
            length = _pax_size(pax, shard, pos)
        start = pos + BLOCK
        if length > size - start:
            raise _fail(f"member of {length} bytes runs past the end of the object ({size} bytes)", shard, pos)
        contents = view[start : start + length]
        offset, pos = pos, start + -(-length // BLOCK) * BLOCK  # always moves on: length >= 0
        if kind == b"x":
            pax.update(_pax(_extended(contents, kind, shard, offset), shard, offset))
            continue
        if kind == b"g":
            _pax(_extended(contents, kind, shard, offset), shard, offset)
            continue
        if kind == b"L":
            long_name = _text(_extended(contents, kind, shard, offset).split(b"\x00", 1)[0], "long name",
                              shard, offset)
            continue
        name = pax.get("path") or long_name or _header_name(raw, shard, offset)
        pax, long_name = {}, None
        if kind not in REGULAR:
            key = name.partition(".")[0]
            raise DatasetError(f"member {name!r} is not a regular file (type {kind!r})", shard=shard, key=key)
        yield name, contents


def tar_samples(data: bytes | memoryview, shard: str = "") -> Iterator[dict[str, Any]]:
    """WebDataset samples {"__key__": key, "<field>.<suffix>": contents} of adjacent members.

    Small members (and JSON) are bytes; larger ones stay views of `data`. A sample is yielded when the
    next key starts, so a consumer sees every sample before a later structural error ends the scan.
    """
    sample: dict[str, Any] = {}
    fields: set[str] = set()
    done: set[str] = set()
    for name, contents in tar_members(data, shard):
        key, field, suffix = check_name(name, shard)
        if sample and sample["__key__"] != key:
            done.add(sample["__key__"])
            yield sample
            sample, fields = {}, set()
        if not sample:
            if key in done:
                raise DatasetError("sample key appears again after other samples (a sample's members must be "
                                   "adjacent)", shard=shard, key=key)
            sample["__key__"] = key
        if field in fields:
            raise DatasetError(f"member {name!r} repeats field {field!r} of its sample", shard=shard, key=key,
                               field=field)
        fields.add(field)
        small = len(contents) < SMALL or suffix.endswith("json")  # json.loads wants bytes
        sample[f"{field}.{suffix}"] = contents.tobytes() if small else contents
    if sample:
        yield sample
