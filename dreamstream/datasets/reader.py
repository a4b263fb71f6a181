"""Reading a dataset: the card, the commit records, and verified, spec-checked samples from shards.

Only committed shards are read (those with a commit record). Every decode goes through
dreamstream.datasets.codec, which refuses anything that would need pickle.
"""

from __future__ import annotations

import hashlib
import io
import math
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from dreamstream.datasets.card import DatasetCard, read_card
from dreamstream.datasets.codec import CodecError, decode_member
from dreamstream.datasets.errors import DatasetError
from dreamstream.datasets.records import (
    INDEX,
    MAX_RECORD_BYTES,
    SHARDS,
    CommitRecord,
    SampleRow,
    parse_meta,
    parse_record,
)
from dreamstream.datasets.spec import EpisodeSpec, SpecError
from dreamstream.datasets.storage import list_names, open_fs, read_options

META = "meta.json"
# meta.json keys that must equal the commit record's row for the sample.
_META_KEYS = ("key", "episode", "chunk", "start", "steps", "is_first", "is_last", "is_terminal", "policy",
              "policy_version")


@dataclass(frozen=True)
class Chunk:
    """One decoded sample: `steps` consecutive rows of one episode, as [T, ...] arrays of every field."""

    row: SampleRow
    arrays: dict[str, np.ndarray]
    shard: str

    @property
    def key(self) -> str:
        return self.row.key


def group_members(data: bytes, shard: str) -> Iterator[dict[str, Any]]:
    """Yield WebDataset-style samples {"__key__": key, "<field>.<suffix>": bytes} from tar bytes."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            sample: dict[str, Any] = {}
            for info in tar:
                if not info.isfile():
                    raise DatasetError(f"member {info.name!r} is not a regular file", shard=shard)
                key, _, rest = info.name.partition(".")
                if sample and sample["__key__"] != key:
                    yield sample
                    sample = {}
                sample.setdefault("__key__", key)
                if rest in sample:
                    raise DatasetError(f"member {info.name!r} appears twice", shard=shard, key=key)
                file = tar.extractfile(info)
                assert file is not None
                sample[rest] = file.read()
            if sample:
                yield sample
    except (tarfile.TarError, EOFError) as exc:
        raise DatasetError(f"truncated or damaged tar: {exc}", shard=shard) from exc


def decode_sample(
    sample: dict[str, Any], spec: EpisodeSpec, shard: str = ""
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Decode a WebDataset-style sample into (meta, arrays) and check the arrays against the spec."""
    key = sample.get("__key__", "?")
    meta: dict[str, Any] | None = None
    arrays: dict[str, np.ndarray] = {}
    for member, data in sample.items():
        if member.startswith("__"):
            continue
        field, _, suffix = member.partition(".")
        try:
            value = decode_member(suffix, data)
        except CodecError as exc:
            raise DatasetError(str(exc), shard=shard, key=key, field=field) from exc
        if member == META:
            meta = value
        elif suffix == "json":
            raise DatasetError("unexpected JSON member", shard=shard, key=key, field=field)
        else:
            arrays[field] = value
    if not isinstance(meta, dict):
        raise DatasetError(f"sample has no {META}", shard=shard, key=key)
    try:
        spec.check_chunk(arrays)
    except SpecError as exc:
        raise DatasetError(str(exc), shard=shard, key=key) from exc
    return meta, arrays


def check_chunk_rows(row: SampleRow, meta: dict[str, Any], arrays: dict[str, np.ndarray], shard: str) -> None:
    """The sample agrees with its commit record row, and its flags follow the row convention."""
    meta = parse_meta(meta, shard, row.key)
    for name in _META_KEYS:
        if meta.get(name) != getattr(row, name):
            raise DatasetError(f"meta.json says {name}={meta.get(name)!r}, the commit record says "
                               f"{getattr(row, name)!r}", shard=shard, key=row.key)
    steps = len(arrays["reward"])
    if steps != row.steps:
        raise DatasetError(f"{steps} rows, the commit record says {row.steps}", shard=shard, key=row.key)
    reward_sum = float(arrays["reward"].sum(dtype=np.float64))
    if not math.isclose(reward_sum, row.reward_sum, rel_tol=1e-6, abs_tol=1e-6):
        raise DatasetError(f"rewards sum to {reward_sum}, the commit record says {row.reward_sum}",
                           shard=shard, key=row.key, field="reward")
    first, last, terminal = arrays["is_first"], arrays["is_last"], arrays["is_terminal"]
    if first[1:].any() or bool(first[0]) != row.is_first:
        raise DatasetError("is_first must be set on an episode's first row only", shard=shard, key=row.key,
                           field="is_first")
    if last[:-1].any() or bool(last[-1]) != row.is_last:
        raise DatasetError("is_last must be set on an episode's last row only", shard=shard, key=row.key,
                           field="is_last")
    if (terminal & ~last).any():
        raise DatasetError("is_terminal set on a row that is not is_last", shard=shard, key=row.key,
                           field="is_terminal")


class Dataset:
    """A dataset at a URL: its card, its commit records and its committed samples."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None):
        self.url = url
        self.storage_options = storage_options
        self.fs, self.root = open_fs(url, storage_options)

    @cached_property
    def card(self) -> DatasetCard:
        return read_card(self.fs, self.root, self.url)

    @property
    def spec(self) -> EpisodeSpec:
        return self.card.spec

    def record_names(self) -> list[str]:
        """Names of the committed shards, freshly listed, sorted."""
        return [n[: -len(".json")] for n in list_names(self.fs, f"{self.root}/{INDEX}") if n.endswith(".json")]

    def shard_names(self) -> list[str]:
        """Names of every shard file present, committed or not (for validation)."""
        return [n[: -len(".tar")] for n in list_names(self.fs, f"{self.root}/{SHARDS}")
                if n.endswith(".tar") and not n.startswith(".")]

    def records(self, names: Iterable[str] | None = None) -> list[CommitRecord]:
        """Commit records (all, or the given names), fetched concurrently where the store allows."""
        names = self.record_names() if names is None else list(names)
        paths = [f"{self.root}/{INDEX}/{name}.json" for name in names]
        bound = {"start": 0, "end": MAX_RECORD_BYTES + 1}  # a huge record is refused, never loaded whole
        if any(c in self.root for c in "*?["):  # fs.cat would read these as glob patterns
            fetched = {path: self.fs.cat_file(path, **bound) for path in paths}
        else:  # one concurrent batch of requests on object stores
            fetched = self.fs.cat(paths, on_error="return", **bound) if paths else {}
        blobs = {path.rsplit("/", 1)[-1]: blob for path, blob in fetched.items()}
        records = []
        for name in names:
            blob = blobs.get(f"{name}.json")
            where = f"{INDEX}/{name}.json"
            if isinstance(blob, BaseException) or blob is None:
                raise DatasetError(f"commit record cannot be read: {blob!r}", root=self.url, shard=where)
            records.append(parse_record(blob, name, self.url))
        return records

    def shard_bytes(self, record: CommitRecord, verify: bool = True) -> bytes:
        """The shard's bytes; with `verify`, their size and sha256 must match the commit record."""
        path = f"{self.root}/{record.shard_path}"
        try:
            with self.fs.open(path, "rb", **read_options(self.fs)) as f:
                data = f.read()
        except FileNotFoundError as exc:
            raise DatasetError("shard is missing but has a commit record", root=self.url,
                               shard=record.shard_path) from exc
        if verify:
            if len(data) != record.bytes:
                raise DatasetError(f"shard has {len(data)} bytes, the commit record says {record.bytes} "
                                   "(truncated or overwritten)", root=self.url, shard=record.shard_path)
            digest = hashlib.sha256(data).hexdigest()
            if digest != record.sha256:
                raise DatasetError(f"sha256 mismatch: {digest} != {record.sha256} (damaged shard)",
                                   root=self.url, shard=record.shard_path)
        return data

    def read_shard(self, record: CommitRecord, verify: bool = True) -> list[Chunk]:
        """Every sample of a committed shard, decoded and checked against the spec and the record."""
        data = self.shard_bytes(record, verify=verify)
        rows = {row.key: row for row in record.samples}
        chunks = []
        for sample in group_members(data, record.shard_path):
            key = sample["__key__"]
            row = rows.pop(key, None)
            if row is None:
                raise DatasetError("sample is not listed in the commit record", root=self.url,
                                   shard=record.shard_path, key=key)
            meta, arrays = decode_sample(sample, self.spec, record.shard_path)
            check_chunk_rows(row, meta, arrays, record.shard_path)
            chunks.append(Chunk(row=row, arrays=arrays, shard=record.shard_path))
        if rows:
            raise DatasetError(f"samples {sorted(rows)} are in the commit record but not in the shard",
                               root=self.url, shard=record.shard_path)
        return chunks

    def chunks(self, records: Iterable[CommitRecord] | None = None, verify: bool = True) -> Iterator[Chunk]:
        for record in self.records() if records is None else records:
            yield from self.read_shard(record, verify=verify)

    def episode(self, episode: str) -> dict[str, np.ndarray]:
        """All rows of one episode, its chunks joined in order. Reads only the shards that hold it."""
        records = self.records()
        holding = [r for r in records if any(row.episode == episode for row in r.samples)]
        if not holding:
            raise DatasetError(f"episode {episode!r} is not in this dataset", root=self.url)
        chunks = sorted((c for c in self.chunks(holding) if c.row.episode == episode), key=lambda c: c.row.chunk)
        return {name: np.concatenate([c.arrays[name] for c in chunks]) for name in self.spec.fields}
