"""Carrying out batch plans: fetch the shards they name (ahead, in threads), copy the planned rows.

`ChunkStore` keeps the decoded arrays of the chunks that plans have acquired and not yet released;
`Assembler` copies a plan's pieces into [T, rows, ...] torch tensors, padding what no piece covers.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch.utils.data import get_worker_info

from dreamstream.datasets.errors import DatasetError
from dreamstream.datasets.loader.batch import EPISODE_ID, EPISODE_STEP, RESET, VALID, torch_dtype
from dreamstream.datasets.loader.fetch import FailureWindow, FetchCounters, FetchPolicy, fetch_shard
from dreamstream.datasets.loader.plan import BatchPlan, ChunkRef
from dreamstream.datasets.reader import Dataset, decode_chunk
from dreamstream.datasets.spec import EpisodeSpec

log = logging.getLogger(__name__)

Arrays = dict[str, np.ndarray]


class ChunkStore:
    """The chunks that batch plans still need: their shards fetched (ahead, in `pool` threads if given) and
    kept undecoded; each chunk decoded when a batch first needs it and dropped when released.

    `failures` (kept by the reader across epochs) sees every shard read and every sample that did not
    decode, and raises when too many failed."""

    def __init__(self, dataset: Dataset, policy: FetchPolicy, pool: ThreadPoolExecutor | None,
                 failures: FailureWindow, on_failure: Callable[[str], None] | None = None):
        self.dataset = dataset
        self.policy = policy
        self.pool = pool
        self.failures = failures
        self.on_failure = on_failure
        self.counters = FetchCounters()
        self.refs: Counter[tuple[str, str]] = Counter()
        self.shard_refs: Counter[str] = Counter()
        self.pending: dict[str, Future | ChunkRef] = {}
        self.samples: dict[str, dict[str, dict[str, Any]]] = {}  # shard -> key -> undecoded sample
        self.data: dict[tuple[str, str], Arrays] = {}
        self.failed: set[str] = set()
        self.bad_chunks: set[tuple[str, str]] = set()
        self.decoding: dict[tuple[str, str], Future] = {}

    def acquire(self, ref: ChunkRef) -> None:
        self.refs[ref.id] += 1
        self.shard_refs[ref.shard] += 1
        if ref.shard in self.samples or ref.shard in self.pending or ref.shard in self.failed:
            return
        if self.pool is None:
            self.pending[ref.shard] = ref  # fetched when first needed
        else:
            self.pending[ref.shard] = self.pool.submit(fetch_shard, self.dataset, ref.record, self.policy,
                                                       self.counters)

    def _resolve(self, ref: ChunkRef) -> None:
        job = self.pending.pop(ref.shard)
        if isinstance(job, Future):
            samples = job.result()
        else:
            samples = fetch_shard(self.dataset, job.record, self.policy, self.counters)
        self.failures.record(ref.shard, samples is not None)
        if samples is None:
            self.failed.add(ref.shard)
            if self.on_failure is not None:
                self.on_failure(ref.shard)
        else:
            self.samples[ref.shard] = samples

    def _decode(self, ref: ChunkRef, samples: dict[str, dict[str, Any]]) -> Arrays:
        row = next(r for r in ref.record.samples if r.key == ref.key)
        return decode_chunk(samples[ref.key], row, self.dataset.spec, ref.record.shard_path)

    def decode_ahead(self, ref: ChunkRef) -> None:
        """Start decoding a chunk the next batch needs, in a fetch thread, if its shard is already here."""
        if self.pool is None or ref.id in self.data or ref.id in self.decoding or ref.id in self.bad_chunks:
            return
        job = self.pending.get(ref.shard)
        if isinstance(job, Future) and job.done():
            self._resolve(ref)
        samples = self.samples.get(ref.shard)
        if samples is not None:
            self.decoding[ref.id] = self.pool.submit(self._decode, ref, samples)

    def get(self, ref: ChunkRef) -> Arrays | None:
        """The chunk's arrays; None if its shard or the chunk itself could not be read (errors skipped)."""
        arrays = self.data.get(ref.id)
        if arrays is not None:
            return arrays
        if ref.shard in self.pending:
            self._resolve(ref)
        samples = self.samples.get(ref.shard)
        if samples is None or ref.id in self.bad_chunks:
            return None
        try:
            job = self.decoding.pop(ref.id, None)
            arrays = job.result() if job is not None else self._decode(ref, samples)
        except DatasetError as exc:
            if self.policy.on_error == "raise":
                raise
            self.bad_chunks.add(ref.id)
            self.counters.add("chunks_skipped")
            log.warning("skipping a sample of %s: %s", self.dataset.url, exc)
            self.failures.fail_chunk(ref.shard)
            return None
        self.data[ref.id] = arrays
        return arrays

    def release(self, ref: ChunkRef) -> None:
        self.refs[ref.id] -= 1
        if self.refs[ref.id] <= 0:
            del self.refs[ref.id]
            self.data.pop(ref.id, None)
            job = self.decoding.pop(ref.id, None)
            if job is not None:
                job.cancel()
        self.shard_refs[ref.shard] -= 1
        if self.shard_refs[ref.shard] <= 0:
            del self.shard_refs[ref.shard]
            self.samples.pop(ref.shard, None)
            job = self.pending.pop(ref.shard, None)
            if isinstance(job, Future):
                job.cancel()

    def close(self) -> None:
        for job in [*self.pending.values(), *self.decoding.values()]:
            if isinstance(job, Future):
                job.cancel()
        self.pending.clear()
        self.decoding.clear()
        self.samples.clear()
        self.data.clear()


def fetch_ahead(plans: Iterator[BatchPlan], store: ChunkStore, lookahead: int = 1) -> Iterator[BatchPlan]:
    """Acquire each plan's chunks `lookahead` batches before it is assembled, so shard reads overlap; and
    start decoding the chunks of the next batch while the current one is assembled."""
    ahead: deque[BatchPlan] = deque()
    for plan in plans:
        for ref in plan.acquire:
            store.acquire(ref)
        ahead.append(plan)
        if len(ahead) > lookahead:
            current = ahead.popleft()
            for piece in ahead[0].pieces:
                store.decode_ahead(piece.ref)
            yield current
    while ahead:
        yield ahead.popleft()


class Assembler:
    """Copies planned pieces into time-major tensors: every spec field [T, rows, ...] plus the loader fields.

    Padding (rows or times no piece covers, or whose shard was skipped) is marked as the batch contract says
    (loader/batch.py): zeros, valid=False, reset=True, episode_step=-1, episode_id=0. Making it inert (no
    loss, the state restarting after it) is the model's job: `train.model.batch.mask_padding`.
    """

    def __init__(self, spec: EpisodeSpec, rows: int, seq_len: int, store: ChunkStore, pin: bool = False):
        self.fields = {name: (f.shape, torch_dtype(f.dtype)) for name, f in spec.fields.items()}
        self.rows, self.seq_len = rows, seq_len
        self.store = store
        self.pin = pin
        self.shared = get_worker_info() is not None

    def _empty(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        if self.shared:  # in a DataLoader worker: allocate in shared memory, as torch's collate does, so
            # sending the part to the trainer's process does not copy it there
            numel = int(np.prod(shape))
            template = torch.empty(0, dtype=dtype)
            return template.new(template._typed_storage()._new_shared(numel)).view(shape)
        return torch.empty(shape, dtype=dtype, pin_memory=self.pin)

    def __call__(self, plan: BatchPlan, force_reset: bool = False) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        T, B = self.seq_len, self.rows
        tensors = {name: self._empty((T, B, *shape), dtype) for name, (shape, dtype) in self.fields.items()}
        out = {name: t.numpy() for name, t in tensors.items()}
        reset = np.ones((T, B), bool)
        valid = np.zeros((T, B), bool)
        step = np.full((T, B), -1, np.int64)
        episode = np.zeros((T, B), np.int64)
        counters = dict(plan.counters)
        for piece in plan.pieces:
            b, t, n, o = piece.row, piece.t, piece.length, piece.offset
            arrays = self.store.get(piece.ref)
            if arrays is None:  # its shard was skipped: padding
                counters["skipped_steps"] = counters.get("skipped_steps", 0) + n
                continue
            for name, array in out.items():
                array[t : t + n, b] = arrays[name][o : o + n]
            reset[t, b], reset[t + 1 : t + n, b] = piece.reset, False
            valid[t : t + n, b] = True
            start = piece.ref.start + o
            step[t : t + n, b] = np.arange(start, start + n)
            episode[t : t + n, b] = piece.ref.episode_id
        if force_reset:
            reset[0] = True
        padding = ~valid
        if padding.any():  # fresh zeros, never stale memory: a batch is the same bytes on every replay
            for array in out.values():
                array[padding] = 0
        for ref in plan.release:
            self.store.release(ref)
        extra = {RESET: reset, VALID: valid, EPISODE_STEP: step, EPISODE_ID: episode}
        for name, array in extra.items():
            tensor = torch.from_numpy(array)
            tensors[name] = tensor.pin_memory() if self.pin else tensor
        steps = int(valid.sum())
        counters["steps"] = steps
        counters["padding_steps"] = T * B - steps
        return tensors, counters
