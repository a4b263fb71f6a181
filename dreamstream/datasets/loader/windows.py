"""Random windows: every batch row is T consecutive steps starting at a uniformly drawn buffered step.

The buffer holds chunks of recently read shards (bounded by `shuffle_buffer` steps) and turns over at the
rate batches consume steps: before each batch, shards are read until the steps read so far cover the
batches planned so far, and the oldest chunks beyond the bound are dropped. A window that reaches the end
of its chunk continues into the episode's next chunk when buffered; otherwise (or at the episode's end) it
continues with another chunk from its first row, with a reset there. Every window starts with a reset.
"""

from __future__ import annotations

import numpy as np

from dreamstream.datasets.loader.plan import BatchPlan, ChunkRef, Piece, chunk_refs
from dreamstream.datasets.loader.tbtt import Source
from dreamstream.datasets.records import CommitRecord


class WindowSampler:
    """Plans [T, rows] batches of uniformly drawn windows for one reader; it never runs out by itself."""

    def __init__(self, source: Source, rows: int, seq_len: int, buffer_steps: int, rng: np.random.Generator):
        self.source = source
        self.rows = rows
        self.seq_len = seq_len
        self.buffer_steps = max(buffer_steps, 2 * rows * seq_len)
        self.rng = rng
        self.buffer: list[ChunkRef] = []  # oldest first
        self.places: dict[tuple[str, int], ChunkRef] = {}
        self.steps = 0
        self.read_steps = 0
        self.batch = 0
        self._plan = BatchPlan(0)

    def _add(self, record: CommitRecord) -> None:
        for ref in chunk_refs(record):
            self.buffer.append(ref)
            self.places[ref.place] = ref
            self.steps += ref.steps
            self.read_steps += ref.steps
            self._plan.acquire.append(ref)

    def _evict(self, ref: ChunkRef) -> None:
        self.buffer.remove(ref)
        if self.places.get(ref.place) is ref:
            del self.places[ref.place]
        self.steps -= ref.steps
        self._plan.release.append(ref)

    def drop_shard(self, shard: str) -> None:
        """Forget the chunks of a shard that could not be read."""
        for ref in [r for r in self.buffer if r.shard == shard]:
            self._evict(ref)

    def _refill(self) -> None:
        target = (self.batch + 1) * self.rows * self.seq_len
        fresh = 0
        while self.source.eager() and (self.read_steps < target or self.steps < self.buffer_steps):
            record = self.source.pull()
            if record is None:
                break
            self._add(record)
            fresh += len(record.samples)
        while not self.buffer or self.read_steps < target:
            record = self.source.pull(replay=True)
            if record is None:
                break
            self._add(record)
            fresh += len(record.samples)
        keep = len(self.buffer) - fresh  # never drop chunks before they had a chance to be drawn
        while self.steps > self.buffer_steps and keep > 0 and len(self.buffer) > 1:
            self._evict(self.buffer[0])
            keep -= 1

    def _pick(self, steps: np.ndarray, cumulative: np.ndarray) -> tuple[ChunkRef, int]:
        """A uniformly drawn buffered step: (its chunk, its row within the chunk)."""
        u = int(self.rng.integers(int(cumulative[-1])))
        i = int(np.searchsorted(cumulative, u, side="right"))
        return self.buffer[i], u - int(cumulative[i] - steps[i])

    def next_batch(self) -> BatchPlan | None:
        plan = self._plan = BatchPlan(self.batch)
        self.source.poll()
        self._refill()
        if not self.buffer:
            return None
        steps = np.array([ref.steps for ref in self.buffer])
        cumulative = np.cumsum(steps)
        for b in range(self.rows):
            ref, offset = self._pick(steps, cumulative)
            t, reset = 0, True
            while True:
                length = min(ref.steps - offset, self.seq_len - t)
                plan.pieces.append(Piece(b, t, ref, offset, length, reset))
                t += length
                if t >= self.seq_len:
                    break
                following = None if ref.next_place is None else self.places.get(ref.next_place)
                if following is not None:
                    ref, offset, reset = following, 0, False
                    plan.count("chunks_continued")
                else:
                    i = int(np.searchsorted(cumulative, int(self.rng.integers(int(cumulative[-1]))), side="right"))
                    ref, offset, reset = self.buffer[i], 0, True
                    plan.count("episodes_started" if ref.is_first else "chunk_resets")
        self.batch += 1
        return plan

    def live(self) -> list[ChunkRef]:
        return list(self.buffer)

    def force_reset(self) -> None:
        pass  # every window starts with a reset anyway
