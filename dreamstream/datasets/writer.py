"""EpisodeWriter: steps or whole episodes in, committed WebDataset shards out.

Rows are grouped per environment slot into chunks (at most `chunk_steps` rows of one episode, one
policy version), chunks are appended to an in-memory tar, and the tar is committed as a shard when it
reaches `shard_max_bytes` or `shard_max_age_s`: shard first, commit record after (docs/format.md).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import secrets
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import webdataset as wds

from dreamstream.datasets.card import FORMAT_VERSION, DatasetCard, check_card, ensure_card
from dreamstream.datasets.codec import encode_array
from dreamstream.datasets.errors import DatasetError
from dreamstream.datasets.records import (
    MAX_RECORD_STEPS,
    MAX_SAMPLE_STEPS,
    MAX_SAMPLES,
    CommitRecord,
    SampleRow,
)
from dreamstream.datasets.spec import RESERVED, SpecError
from dreamstream.datasets.storage import AlreadyExists, commit_bytes, open_fs

log = logging.getLogger(__name__)

COMPRESSED_KINDS = ("image", "categorical")


@dataclass
class WriterConfig:
    """How episodes are cut into samples and samples grouped into shards."""

    chunk_steps: int = 1000
    """Rows per sample at most (up to 2**20); longer episodes continue in the next chunk (same episode id)."""
    shard_max_bytes: int = 64 * 2**20
    """Commit the open shard once its encoded size reaches this many bytes."""
    shard_max_age_s: float = 10.0
    """Commit at most this long after the first uncommitted step (open episodes are cut), so an online
    trainer sees new data within seconds."""
    compress_level: int | None = 3
    """zstd level for image and categorical members (`.npy.zst`); null stores plain `.npy`."""

    def __post_init__(self) -> None:
        if self.chunk_steps < 1 or self.shard_max_bytes < 1 or self.shard_max_age_s <= 0:
            raise ValueError(f"writer settings must be positive: {self}")
        if self.chunk_steps > MAX_SAMPLE_STEPS:
            raise ValueError(f"chunk_steps {self.chunk_steps} is over the format's {MAX_SAMPLE_STEPS} rows per sample")


def new_writer_id() -> str:
    """Unique per process: host, pid and a random suffix, in characters safe for keys and file names."""
    host = "".join(c if c.isalnum() else "_" for c in socket.gethostname())[:32]
    return f"{host}_{os.getpid()}_{secrets.token_hex(3)}"


@dataclass
class _OpenEpisode:
    """One slot's current episode: rows not yet in a sample, written in place into chunk-sized buffers."""

    episode: str
    policy: str
    policy_version: int
    chunk: int = 0
    start: int = 0
    pending: int = 0  # rows in `buffers` not yet sealed into a sample
    buffers: dict[str, np.ndarray] = field(default_factory=dict)


class EpisodeWriter:
    """Writes episodes of one environment spec to ROOT; one instance per process (its writer id).

    Use as a context manager: leaving it (normally, on an exception or on a signal handler's
    SystemExit) commits every complete row, including the rows of episodes still running.
    """

    def __init__(
        self,
        root: str,
        card: DatasetCard,
        config: WriterConfig | None = None,
        storage_options: dict[str, Any] | None = None,
        writer_id: str | None = None,
    ):
        self.url = root
        self.config = config or WriterConfig()
        self.fs, self.root = open_fs(root, storage_options)
        self.card = ensure_card(self.fs, self.root, card, url=root)
        self.spec = self.card.spec
        # name -> (step shape, dtype, reserved row field), resolved once for the per-row checks
        self._field_checks = {
            name: (f.shape, np.dtype(f.dtype), name in RESERVED) for name, f in self.spec.fields.items()
        }
        self._slot_buffers: dict[int, dict[str, np.ndarray]] = {}  # reused across a slot's episodes
        self.writer_id = writer_id or new_writer_id()
        self.committed: list[CommitRecord] = []
        self._unsent: list[tuple[CommitRecord, bytes]] = []  # sealed shards whose commit has not succeeded yet
        self._unsealed = 0  # rows of open episodes not yet in a sample
        self._episodes: dict[int, _OpenEpisode] = {}
        self._seq = 0
        self._new_shard()

    # -- input -------------------------------------------------------------------------------------------

    def add_step(self, row: dict[str, Any], slot: int = 0, policy: str = "unknown", policy_version: int = 0) -> None:
        """Append one row (observation fields, action, reward, is_first, is_last, is_terminal) to `slot`."""
        row = self._checked_row(row, slot)
        episode = self._episodes.get(slot)
        if row["is_first"]:
            if episode is not None:
                raise ValueError(f"slot {slot}: a new episode started (is_first) before the last one ended (is_last)")
            episode = self._episodes[slot] = self._open_episode(slot, policy, policy_version)
        elif episode is None:
            raise ValueError(f"slot {slot}: the first row of an episode must have is_first=True")
        elif (policy, policy_version) != (episode.policy, episode.policy_version):
            self._seal(episode)  # a sample is made by one policy version
            episode.policy, episode.policy_version = policy, policy_version
        if self._first_step_at is None:
            self._first_step_at = time.monotonic()
        for name, value in row.items():
            episode.buffers[name][episode.pending] = value
        episode.pending += 1
        self._unsealed += 1
        if row["is_last"]:
            self._seal(episode)
            del self._episodes[slot]
        elif episode.pending >= self.config.chunk_steps:
            self._seal(episode)
        self.commit_if_due()

    def _open_episode(self, slot: int, policy: str, policy_version: int) -> _OpenEpisode:
        buffers = self._slot_buffers.get(slot)
        if buffers is None:
            rows = self.config.chunk_steps
            buffers = {name: np.empty((rows, *shape), dtype) for name, (shape, dtype, _) in self._field_checks.items()}
            self._slot_buffers[slot] = buffers
        return _OpenEpisode(uuid.uuid4().hex[:16], policy, policy_version, buffers=buffers)

    def add_episode(self, arrays: dict[str, np.ndarray], policy: str = "unknown", policy_version: int = 0) -> None:
        """Append a whole episode given as [T, ...] arrays of every field (flags included), made by one policy
        version, and commit if due.

        Cut into chunks by slicing, without the per-row path: for episodes already whole in memory (the
        benchmarks' and tests' synthetic data). Corpora are resharded row by row with add_step, each row
        with the policy version that made it.
        """
        steps = self.spec.check_chunk(arrays)
        first, last, terminal = arrays["is_first"], arrays["is_last"], arrays["is_terminal"]
        if not first[0] or first[1:].any() or not last[-1] or last[:-1].any() or (terminal & ~last).any():
            raise SpecError("an episode needs is_first on its first row only, is_last on its last row only, "
                            "and is_terminal only where is_last")
        episode = _OpenEpisode(uuid.uuid4().hex[:16], policy, policy_version)
        if self._first_step_at is None:
            self._first_step_at = time.monotonic()
        for start in range(0, steps, self.config.chunk_steps):
            stop = min(start + self.config.chunk_steps, steps)
            self._write_sample(episode, {name: a[start:stop] for name, a in arrays.items()})
            self.commit_if_due()

    def _checked_row(self, row: dict[str, Any], slot: int) -> dict[str, np.ndarray]:
        """The row as arrays of the spec's shapes and dtypes (the hot path: one dict lookup per field)."""
        if row.keys() != self._field_checks.keys():
            missing, extra = sorted(self._field_checks - row.keys()), sorted(row.keys() - self._field_checks.keys())
            raise SpecError(f"slot {slot}: row fields do not match the spec (missing {missing}, unexpected {extra})")
        out = {}
        for name, (shape, dtype, reserved) in self._field_checks.items():
            value = row[name]
            if type(value) is dtype.type and not shape:  # a NumPy scalar of the spec's dtype: nothing to check
                out[name] = value
                continue
            if reserved:  # python scalars and env-native dtypes are normal here
                value = np.asarray(value, dtype=dtype)
            elif type(value) is not np.ndarray:
                value = np.asarray(value)
            if value.shape != shape or value.dtype != dtype:
                raise SpecError(f"slot {slot}: field {name!r} is {value.dtype}{list(value.shape)}, "
                                f"the spec says {dtype}{list(shape)}")
            out[name] = value
        if out["is_terminal"] and not out["is_last"]:
            raise SpecError(f"slot {slot}: is_terminal without is_last")
        return out

    # -- samples and shards ----------------------------------------------------------------------------

    def _new_shard(self) -> None:
        self._buffer = io.BytesIO()
        self._tar = wds.TarWriter(self._buffer, encoder=False)
        self._rows: list[SampleRow] = []
        self._steps = 0
        self._first_step_at: float | None = None

    def _seal(self, episode: _OpenEpisode) -> None:
        """Turn the episode's pending rows into one sample of the open shard."""
        if episode.pending:
            self._write_sample(episode, {name: buffer[: episode.pending] for name, buffer in episode.buffers.items()})
            self._unsealed -= episode.pending
            episode.pending = 0

    def _write_sample(self, episode: _OpenEpisode, arrays: dict[str, np.ndarray]) -> None:
        """Encode the next chunk of `episode` into the open shard and advance the episode's position."""
        steps = len(arrays["reward"])
        sample = SampleRow(
            key=f"{episode.episode}-{episode.chunk:04d}",
            episode=episode.episode,
            chunk=episode.chunk,
            start=episode.start,
            steps=steps,
            reward_sum=float(arrays["reward"].sum(dtype=np.float64)),
            is_first=bool(arrays["is_first"][0]),
            is_last=bool(arrays["is_last"][-1]),
            is_terminal=bool(arrays["is_terminal"][-1]),
            policy=episode.policy,
            policy_version=episode.policy_version,
            created=time.time(),
        )
        members: dict[str, Any] = {"__key__": sample.key}
        meta = {**sample.to_json(), "env": self.card.env_id, "writer": self.writer_id, "format_version": FORMAT_VERSION}
        members["meta.json"] = json.dumps(meta).encode()
        for name, array in arrays.items():
            level = self.config.compress_level if self.spec.fields[name].kind in COMPRESSED_KINDS else None
            suffix, data = encode_array(array, level)
            members[f"{name}.{suffix}"] = data
        self._tar.write(members)
        self._rows.append(sample)
        self._steps += steps
        episode.chunk += 1
        episode.start += steps

    def commit_if_due(self) -> None:
        """Commit if the open shard reached its size or age limit. add_step and add_episode call it; so do
        callers that pause between steps (a throttled collector), so collected data still commits on time."""
        too_big = self._buffer.tell() >= self.config.shard_max_bytes or self._near_format_limits()
        too_old = (
            self._first_step_at is not None
            and time.monotonic() - self._first_step_at >= self.config.shard_max_age_s
        )
        if too_big or too_old:
            self.commit()

    def _near_format_limits(self) -> bool:
        """Could the next input pass the format's limits per shard (records.py), which readers enforce?
        It adds at most one sample of `chunk_steps` rows or two samples of one slot; a commit also seals
        one sample per open episode."""
        samples = len(self._rows) + len(self._episodes) + 2
        steps = self._steps + self._unsealed + self.config.chunk_steps
        return samples > MAX_SAMPLES or steps > MAX_RECORD_STEPS

    def commit(self) -> CommitRecord | None:
        """Seal every open episode's pending rows into the open shard and commit it; -> its record, or
        None if there was nothing to commit.

        The shard is sealed (named, its bytes fixed) before anything is written, and a new shard opens at
        once: if the store fails, the sealed shard waits in `_unsent`, rows added later go to the next
        shard, and the next commit() or close() retries the unsent ones first, in order.
        """
        for episode in self._episodes.values():
            self._seal(episode)
        if self._rows:
            self._unsent.append(self._seal_shard())
        self._first_step_at = None
        record = None
        while self._unsent:
            record, data = self._unsent[0]
            self._commit_shard(record, data)
            self._unsent.pop(0)
            self.committed.append(record)
        return record

    def _seal_shard(self) -> tuple[CommitRecord, bytes]:
        """Close the open shard into (record, bytes) and open the next one."""
        self._tar.close()  # writes the end-of-archive blocks; our BytesIO stays open
        data = self._buffer.getvalue()
        record = CommitRecord(
            name=f"{self.writer_id}-{self._seq:06d}",
            bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            writer=self.writer_id,
            created=time.time(),
            samples=tuple(self._rows),
        )
        self._seq += 1
        self._new_shard()
        return record, data

    def _commit_shard(self, record: CommitRecord, data: bytes) -> None:
        """Shard first, commit record after; each step may already be done by an earlier failed attempt."""
        check_card(self.fs, self.root, self.card, self.url)
        self._commit_file(f"{self.root}/{record.shard_path}", data)
        self._commit_file(f"{self.root}/{record.record_path}", record.dumps())
        log.debug("committed %s: %d samples, %d steps, %d bytes", record.name, len(record.samples), record.steps,
                  len(data))

    def _commit_file(self, path: str, data: bytes) -> None:
        """commit_bytes, where a file that exists with exactly `data` counts as committed: a store can fail
        an upload after storing it, and the retry must not be wedged by its own earlier write."""
        try:
            commit_bytes(self.fs, path, data)
        except AlreadyExists:
            if self.fs.cat_file(path) != data:
                raise DatasetError(f"{path} exists with other content: another writer used this writer id",
                                   root=self.url) from None

    def close(self) -> None:
        """Commit everything that is pending (rows of running episodes become a partial chunk)."""
        self.commit()

    def __enter__(self) -> EpisodeWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
