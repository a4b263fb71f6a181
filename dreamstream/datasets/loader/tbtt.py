"""TBTT streams (PyDreamer's way): each batch row continues its episode from the previous batch.

Each of a reader's rows plays chunks back to back. When a row finishes a chunk it takes the episode's
next chunk if that chunk is in the buffer (the model state carries over: no reset); otherwise it draws a
chunk at random from the buffer and the state resets at its first row (an episode start, or a chunk whose
predecessor is not available: its rows are still used, nothing is dropped or faked). A chunk whose
predecessor is being played or is buffered is held back for the row that will continue into it.
At every batch start each row also resets with probability T / reset_interval (random resets).

Planning uses commit-record metadata only (see plan.py), so the same code computes batch counts ahead
and replays a resumed epoch's first batches without reading any shard.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from dreamstream.datasets.loader.plan import BatchPlan, ChunkRef, Piece, chunk_refs
from dreamstream.datasets.records import CommitRecord


class Source(Protocol):
    def poll(self) -> None: ...

    def eager(self) -> bool: ...

    def pull(self, replay: bool = False) -> CommitRecord | None: ...


@dataclass
class _Row:
    ref: ChunkRef | None = None  # chunk being played (kept after it ends until the row moves on)
    offset: int = 0
    reset: bool = True  # the next piece starts from a zero state


class TbttSampler:
    """Plans [T, rows] batches of chunk pieces for one reader; `next_batch()` is None once data runs out."""

    def __init__(self, source: Source, rows: int, seq_len: int, buffer_steps: int, reset_interval: int,
                 rng: np.random.Generator):
        self.source = source
        self.rows = [_Row() for _ in range(rows)]
        self.seq_len = seq_len
        self.buffer_steps = buffer_steps
        self.reset_p = min(1.0, seq_len / reset_interval) if reset_interval else 0.0
        self.rng = rng
        self.pool: list[ChunkRef] = []  # buffered chunks, oldest first
        self.pool_places: Counter[tuple[str, int]] = Counter()
        self.pool_steps = 0
        self.playing: Counter[tuple[str, int]] = Counter()
        self.batch = 0
        self._plan = BatchPlan(0)

    # -- buffer ------------------------------------------------------------------------------------------

    def _add(self, record: CommitRecord) -> None:
        for ref in chunk_refs(record):
            self.pool.append(ref)
            self.pool_places[ref.place] += 1
            self.pool_steps += ref.steps
            self._plan.acquire.append(ref)

    def _remove(self, ref: ChunkRef) -> None:
        self.pool.remove(ref)
        self.pool_places[ref.place] -= 1
        if not self.pool_places[ref.place]:
            del self.pool_places[ref.place]
        self.pool_steps -= ref.steps

    def _fill(self) -> None:
        while self.pool_steps < self.buffer_steps and self.source.eager():
            record = self.source.pull()
            if record is None:
                break
            self._add(record)

    def _held(self, ref: ChunkRef) -> bool:
        before = (ref.episode, ref.chunk - 1)  # the place whose next_place this chunk is
        return ref.chunk > 0 and (before in self.playing or before in self.pool_places)

    def _draw(self) -> ChunkRef | None:
        """A random chunk that no row will continue into; None when there is none left.

        If every buffered chunk is held, more shards are read (up to twice the buffer, then the oldest held
        chunk is taken with a reset). Once no shard is left, a row that finds only held chunks idles: each
        held chain starts at a chunk whose predecessor a row is playing, and that row will continue into it.
        """
        self._fill()
        while True:
            heads = [ref for ref in self.pool if not self._held(ref)]
            if heads:
                return heads[int(self.rng.integers(len(heads)))]
            if self.pool and self.pool_steps >= 2 * self.buffer_steps:
                return self.pool[0]
            record = self.source.pull(replay=True)
            if record is None:
                return None
            self._add(record)

    def drop_shard(self, shard: str) -> None:
        """Forget buffered chunks of a shard that could not be read (follow mode)."""
        for ref in [r for r in self.pool if r.shard == shard]:
            self._remove(ref)
            self._plan.release.append(ref)

    # -- rows --------------------------------------------------------------------------------------------

    def _advance(self, row: _Row) -> None:
        """Move a row whose chunk has ended (or that has none) to its next chunk."""
        previous = row.ref
        if previous is not None:
            self.playing[previous.place] -= 1
            if not self.playing[previous.place]:
                del self.playing[previous.place]
        nxt = None
        following = None if previous is None else previous.next_place
        if following is not None:
            if following not in self.pool_places:
                self._fill()
            if following in self.pool_places:
                nxt = next(r for r in self.pool if r.place == following)
        if nxt is not None:
            self._plan.count("chunks_continued")
        else:
            nxt = self._draw()
            row.reset = True
            if nxt is not None:
                self._plan.count("episodes_started" if nxt.is_first else "chunk_resets")
        row.ref, row.offset = nxt, 0
        if nxt is not None:
            self._remove(nxt)
            self.playing[nxt.place] += 1

    def next_batch(self) -> BatchPlan | None:
        plan = self._plan = BatchPlan(self.batch)
        self.source.poll()
        draws = self.rng.random(len(self.rows)) < self.reset_p  # drawn every batch: reproducible
        filled = False
        for b, row in enumerate(self.rows):
            t = 0
            while t < self.seq_len:
                if row.ref is None or row.offset >= row.ref.steps:
                    self._advance(row)
                    if row.ref is None:
                        break  # no data left for this row: the rest of it is padding
                ref = row.ref
                length = min(ref.steps - row.offset, self.seq_len - t)
                reset = row.reset
                if t == 0 and draws[b] and not reset:
                    reset = True
                    plan.count("random_resets")
                plan.pieces.append(Piece(b, t, ref, row.offset, length, reset))
                row.reset = False
                row.offset += length
                t += length
                if row.offset >= ref.steps:
                    plan.release.append(ref)
            filled |= t > 0
        if not filled:
            return None
        self.batch += 1
        return plan

    def live(self) -> list[ChunkRef]:
        """Chunks a later batch may still use: buffered ones and the unfinished ones being played."""
        playing = [row.ref for row in self.rows if row.ref is not None and row.offset < row.ref.steps]
        return self.pool + playing

    def force_reset(self) -> None:
        """Start every row from a zero state at its next piece (a resumed run has no saved model state)."""
        for row in self.rows:
            row.reset = True
