"""Reading a dataset: the card, the commit records, and verified, spec-checked samples from shards.

Only committed shards are read (those with a commit record). Every decode goes through
dreamstream.datasets.codec, which refuses anything that would need pickle.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from dreamstream.datasets.card import CARD_NAME, DatasetCard, read_card
from dreamstream.datasets.codec import JSON, CodecError, check_suffix, decode_array
from dreamstream.datasets.episodes import Episode, EpisodeIndex
from dreamstream.datasets.errors import DatasetError, ReadError, StoreError
from dreamstream.datasets.records import (
    INDEX,
    MAX_RECORD_BYTES,
    SHARDS,
    CommitRecord,
    SampleRow,
    parse_meta,
    parse_record,
)
from dreamstream.datasets.selection import Bounds, Episodes, select
from dreamstream.datasets.spec import FLAGS, REWARD, EpisodeSpec
from dreamstream.datasets.stats_file import STATS_NAME, StoredStats, read_stats
from dreamstream.datasets.storage import list_names, open_fs, read_options
from dreamstream.datasets.tar import tar_samples

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


def decode_sample(sample: dict[str, Any], spec: EpisodeSpec, steps: int, shard: str = "",
                  fields: set[str] | None = None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Decode a sample of `steps` rows (its commit record row's) into (meta, arrays).

    Each member is checked against its field's dtype and shape and the row count before it is decoded
    (codec.decode_array), so no member can make the reader allocate more than those rows hold.
    `fields`: decode only these fields; the other members must still be fields of the spec.
    """
    key = sample.get("__key__", "?")
    meta: dict[str, Any] | None = None
    arrays: dict[str, np.ndarray] = {}
    for member, data in sample.items():
        if member.startswith("__"):
            continue
        name, _, suffix = member.partition(".")
        try:
            check_suffix(suffix)
            if member == META:
                meta = parse_meta(data, shard, key)
            elif suffix == JSON or name not in spec.fields:
                raise CodecError("unexpected JSON member" if suffix == JSON else "field is not in the spec")
            elif fields is None or name in fields:
                field = spec.fields[name]
                arrays[name] = decode_array(suffix, data, field.dtype, (steps, *field.shape))
        except CodecError as exc:
            raise DatasetError(str(exc), shard=shard, key=key, field=name) from None
    if meta is None:
        raise DatasetError(f"sample has no {META}", shard=shard, key=key)
    missing = sorted(set(spec.fields if fields is None else fields & set(spec.fields)) - set(arrays))
    if missing:
        raise DatasetError(f"missing fields {missing}", shard=shard, key=key)
    return meta, arrays


def check_chunk_rows(row: SampleRow, meta: dict[str, Any], arrays: dict[str, np.ndarray], shard: str) -> None:
    """The sample agrees with its commit record row, and its flags follow the row convention."""
    for name in _META_KEYS:
        if meta.get(name) != getattr(row, name):
            raise DatasetError(f"meta.json says {name}={meta.get(name)!r}, the commit record says "
                               f"{getattr(row, name)!r}", shard=shard, key=row.key)
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


def decode_chunk(sample: dict[str, Any], row: SampleRow, spec: EpisodeSpec, shard: str,
                 fields: set[str] | None = None) -> dict[str, np.ndarray]:
    """One sample's arrays, decoded (bounded, pickle-free, spec-checked) and checked against its row.

    `fields`: only these (plus the reward and flags, which the row check needs).
    """
    needed = None if fields is None else set(fields) | {REWARD, *FLAGS}
    meta, arrays = decode_sample(sample, spec, row.steps, shard, needed)
    check_chunk_rows(row, meta, arrays, shard)
    return arrays


def split_shard(data: bytes, record: CommitRecord, root: str = "") -> dict[str, dict[str, Any]]:
    """The shard's samples in shard order, undecoded ({key: {"<field>.<suffix>": bytes or view}}), every
    one listed in its record and every listed one present. The whole structure is checked before any
    sample is decoded, so every reader reaches the same verdict on a shard."""
    samples = {sample["__key__"]: sample for sample in tar_samples(data, record.shard_path)}
    listed = {row.key for row in record.samples}
    if samples.keys() != listed:
        extra, missing = sorted(samples.keys() - listed), sorted(listed - samples.keys())
        raise DatasetError(f"samples do not match the commit record (not listed: {extra}, missing: {missing})",
                           root=root, shard=record.shard_path)
    return samples


@contextlib.contextmanager
def _store(what: str, root: str, shard: str = "", missing: str = "") -> Iterator[None]:
    """Failures of the store while doing `what`, as project errors: a missing object (when `missing` says
    what that means) as ReadError, anything else a backend raises (OSError, botocore, aiohttp, ...) as
    StoreError naming the root."""
    try:
        yield
    except DatasetError:
        raise
    except FileNotFoundError as exc:
        if not missing:
            raise StoreError(f"cannot {what}: {exc}", root=root, shard=shard) from exc
        raise ReadError(missing, root=root, shard=shard) from exc
    except Exception as exc:
        raise StoreError(f"cannot {what}: {type(exc).__name__}: {exc}", root=root, shard=shard) from exc


class Dataset:
    """A dataset at a URL: its card, its commit records and its committed samples."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None):
        self.url = url
        self.storage_options = storage_options
        with _store("open the store", url):
            self.fs, self.root = open_fs(url, storage_options)

    @cached_property
    def card(self) -> DatasetCard:
        with _store(f"read {CARD_NAME}", self.url):
            return read_card(self.fs, self.root, self.url)

    @property
    def spec(self) -> EpisodeSpec:
        return self.card.spec

    def stats(self) -> StoredStats | None:
        """The statistics stored beside the card by `dreamstream stats ROOT --write` (read afresh, checked);
        None if there are none."""
        with _store(f"read {STATS_NAME}", self.url):
            return read_stats(self.fs, self.root, self.url)

    def record_names(self) -> list[str]:
        """Names of the committed shards, freshly listed, sorted."""
        with _store(f"list {INDEX}/", self.url):
            names = list_names(self.fs, f"{self.root}/{INDEX}")
        return [n[: -len(".json")] for n in names if n.endswith(".json")]

    def shard_names(self) -> list[str]:
        """Names of every shard file present, committed or not (for validation)."""
        with _store(f"list {SHARDS}/", self.url):
            names = list_names(self.fs, f"{self.root}/{SHARDS}")
        return [n[: -len(".tar")] for n in names if n.endswith(".tar") and not n.startswith(".")]

    def records(self, names: Iterable[str] | None = None) -> list[CommitRecord]:
        """Commit records (all, or the given names), fetched concurrently where the store allows; the
        first bad one raises."""
        records, errors = self.read_records(names)
        if errors:
            raise errors[0]
        return records

    def read_records(self, names: Iterable[str] | None = None) -> tuple[list[CommitRecord], list[DatasetError]]:
        """-> (the good records, an error for each bad one): `validate` reports every bad record."""
        names = self.record_names() if names is None else list(names)
        paths = [f"{self.root}/{INDEX}/{name}.json" for name in names]
        bound = {"start": 0, "end": MAX_RECORD_BYTES + 1}  # a huge record is refused, never loaded whole
        with _store("read commit records", self.url):
            if any(c in self.root for c in "*?["):  # fs.cat would read these as glob patterns
                fetched = {path: self.fs.cat_file(path, **bound) for path in paths}
            else:  # one concurrent batch of requests on object stores
                fetched = self.fs.cat(paths, on_error="return", **bound) if paths else {}
        blobs = {path.rsplit("/", 1)[-1]: blob for path, blob in fetched.items()}
        records, errors = [], []
        for name in names:
            blob = blobs.get(f"{name}.json")
            where = f"{INDEX}/{name}.json"
            try:
                if isinstance(blob, BaseException) or blob is None:
                    with _store("read the commit record", self.url, where, missing="commit record vanished"):
                        raise blob or FileNotFoundError(where)
                records.append(parse_record(blob, name, self.url))
            except DatasetError as exc:
                errors.append(exc)
        return records, errors

    def shard_bytes(self, record: CommitRecord, verify: bool = True, checksum: bool = True) -> bytes:
        """The shard's bytes; with `verify`, the object's size must match the commit record before a byte
        is read (a shard far larger than its record says is never loaded), and the sha256 after unless
        `checksum` is false (a reader that trusts the sha256 checked when the shard was committed).

        Raises ReadError (missing, checksum) and StoreError (the store failed), which are worth retrying,
        or DatasetError (the stored object has the wrong size), which is not.
        """
        path = f"{self.root}/{record.shard_path}"
        where = {"root": self.url, "shard": record.shard_path}
        with _store("read the shard", missing="shard is missing but has a commit record", **where):
            with self.fs.open(path, "rb", **read_options(self.fs)) as f:
                if not verify:
                    return f.read()
                size = getattr(f, "size", None)
                size = self.fs.size(path) if size is None else size
                if size != record.bytes:
                    raise DatasetError(f"shard has {size} bytes, the commit record says {record.bytes} "
                                       "(truncated or overwritten)", **where)
                data = f.read(record.bytes + 1)
        if len(data) != record.bytes:
            raise ReadError(f"read {len(data)} bytes of a {record.bytes}-byte shard (it changed while read)",
                            **where)
        if not checksum:
            return data
        digest = hashlib.sha256(data).hexdigest()
        if digest != record.sha256:
            raise ReadError(f"sha256 mismatch: {digest} != {record.sha256} (damaged shard)", **where)
        return data

    def read_shard(self, record: CommitRecord, verify: bool = True) -> list[Chunk]:
        """Every sample of a committed shard, decoded and checked against the spec and the record."""
        return list(self.iter_shard(record, verify=verify))

    def iter_shard(self, record: CommitRecord, verify: bool = True, keys: set[str] | None = None,
                   fields: set[str] | None = None) -> Iterator[Chunk]:
        """The shard's samples in shard order, decoded and checked, holding the shard's bytes and one
        decoded sample at a time.

        `keys`: only these samples (the others are checked for membership in the record, not decoded).
        `fields`: decode only these fields (plus the reward and flags, which the record check needs).
        """
        samples = split_shard(self.shard_bytes(record, verify=verify), record, self.url)
        rows = {row.key: row for row in record.samples}
        for key, sample in samples.items():
            if keys is None or key in keys:
                arrays = decode_chunk(sample, rows[key], self.spec, record.shard_path, fields)
                yield Chunk(row=rows[key], arrays=arrays, shard=record.shard_path)

    def chunks(self, records: Iterable[CommitRecord] | None = None, verify: bool = True) -> Iterator[Chunk]:
        for record in self.records() if records is None else records:
            yield from self.read_shard(record, verify=verify)

    def episodes(self, *, policy: str | None = None, versions: Bounds | None = None,
                 returns: Bounds | None = None, lengths: Bounds | None = None, outcome: str = "complete",
                 fields: set[str] | None = None, verify: bool = True) -> Episodes:
        """The episodes that pass the filters (selection.select; complete ones by default), planned from
        freshly listed commit records: no shard is read until an episode's arrays are asked for, and then
        only the shards holding it. `fields`: decode only these (plus the reward and flags)."""
        records = self.records()
        chosen = select(EpisodeIndex(records), policy=policy, versions=versions, returns=returns,
                        lengths=lengths, outcome=outcome)
        return Episodes(chosen, EpisodeChunks(self, records, fields, verify))

    def episode(self, episode: str) -> dict[str, np.ndarray]:
        """All rows of one episode (complete or not), its committed chunks joined in chunk order. Reads only
        the shards that hold it, and decodes only its chunks."""
        records = self.records()
        index = EpisodeIndex(records)
        if episode not in index:
            raise DatasetError(f"episode {episode!r} is not in this dataset", root=self.url)
        (data,) = Episodes([index[episode]], EpisodeChunks(self, records))
        return data.arrays


class EpisodeChunks:
    """Decoded chunks of index entries, holding the members of the last shard read (split, undecoded): the
    episodes of a selection come in commit order, so consecutive ones that share a shard read it once.

    `reads` counts the shards fetched.
    """

    def __init__(self, dataset: Dataset, records: Iterable[CommitRecord], fields: set[str] | None = None,
                 verify: bool = True):
        self.dataset, self.fields, self.verify = dataset, fields, verify
        self.records = {record.name: record for record in records}
        self.reads = 0
        self._held: tuple[str, dict[str, dict[str, Any]], dict[str, SampleRow]] | None = None

    def _shard(self, name: str) -> tuple[dict[str, dict[str, Any]], dict[str, SampleRow]]:
        if self._held is None or self._held[0] != name:
            self._held = None  # let the previous shard's bytes go before the next one is fetched
            record = self.records[name]
            samples = split_shard(self.dataset.shard_bytes(record, verify=self.verify), record, self.dataset.url)
            self.reads += 1
            self._held = (name, samples, {row.key: row for row in record.samples})
        return self._held[1], self._held[2]

    def chunk_arrays(self, episode: Episode) -> Iterator[dict[str, np.ndarray]]:
        for chunk in episode.chunks:
            samples, rows = self._shard(chunk.shard)
            yield decode_chunk(samples[chunk.key], rows[chunk.key], self.dataset.spec,
                               self.records[chunk.shard].shard_path, self.fields)
