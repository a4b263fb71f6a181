"""StreamingLoader: the trainer's side. Starts the readers, joins their parts into [T, B] batches, keeps
the position (state_dict / load_state_dict) and the metrics.

    loader = make_loader("s3://bucket/corpus", LoaderConfig(batch_size=16, seq_len=50))
    for batch in loader:           # fixed mode: one epoch (the next `for` continues with the next one)
        batch = to_device(batch, device)
        ...
    checkpoint["loader"] = loader.state_dict()
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import torch
from webdataset.utils import pytorch_worker_info

from dreamstream.datasets.card import DatasetCard
from dreamstream.datasets.errors import DatasetError
from dreamstream.datasets.loader.batch import LOADER_FIELDS
from dreamstream.datasets.loader.config import LoaderConfig
from dreamstream.datasets.loader.runners import PartRunner, start_runner
from dreamstream.datasets.loader.shards import check_enough_shards, fingerprint
from dreamstream.datasets.loader.stream import ReaderJob, epoch_layout
from dreamstream.datasets.reader import Dataset
from dreamstream.datasets.shares import even_shares
from dreamstream.datasets.spec import EpisodeSpec

log = logging.getLogger(__name__)

STATE_FORMAT = "dreamstream.loader"
# Counters (totals since the start of the run, kept across resumes); docs/loader.md explains each.
COUNTERS = ("batches", "steps", "padding_steps", "skipped_steps", "episodes_started", "chunks_continued",
            "chunk_resets", "random_resets", "shards_read", "shards_skipped", "shard_retries", "bytes_read",
            "chunks_skipped")
FOLLOW_COUNTERS = ("follow_relists", "follow_relist_errors", "follow_new_shards", "follow_replays")
# Gauges are levels, not counts: the loader reports the latest value of each reader, summed or maxed.
GAUGES = ("follow_pending_new", "follow_known_shards", "follow_lag_s")
SUMMED_GAUGES = ("follow_pending_new",)


class StreamingLoader:
    """Batches of [T, B] tensors from a dataset's committed shards (see make_loader and docs/loader.md)."""

    def __init__(self, url: str, config: LoaderConfig, rank: int, world_size: int,
                 storage_options: dict[str, Any] | None = None):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
        self.url, self.config = url, config
        self.rank, self.world_size = rank, world_size
        self.storage_options = storage_options
        self.dataset = Dataset(url, storage_options)
        clash = sorted(set(self.dataset.spec.fields) & set(LOADER_FIELDS))
        if clash:
            raise DatasetError(f"fields {clash} clash with the loader's own batch fields {LOADER_FIELDS}", root=url)
        self.workers = config.workers
        readers_per_rank = max(config.workers, 1)
        self.rows = even_shares(config.batch_size, readers_per_rank)  # the batch rows of each reader
        self.records = None if config.follow else self.dataset.records()
        if self.records is not None:
            check_enough_shards(self.records, readers_per_rank * world_size, world_size, config.workers, url)
        self.pin = bool(config.pin_memory and torch.cuda.is_available())
        self.epoch = 0
        self._position = 0  # batches of `epoch` handed out
        self._seen: set[str] = set()
        self._counters: dict[str, float] = dict.fromkeys(COUNTERS + (FOLLOW_COUNTERS if config.follow else ()), 0)
        self._gauges: dict[int, dict[str, float]] = {}
        self._wait_s = 0.0
        self._parts: PartRunner | None = None
        self._length = (-1, 0)  # (epoch, batches in it)

    # -- what it reads -----------------------------------------------------------------------------------

    @property
    def card(self) -> DatasetCard:
        return self.dataset.card

    @property
    def spec(self) -> EpisodeSpec:
        return self.dataset.spec

    def __len__(self) -> int:
        """Batches per epoch on this rank (fixed mode), the same on every rank."""
        if self.records is None:
            raise TypeError("a follow-mode loader is endless: it has no length")
        if self._length[0] != self.epoch:
            self._length = (self.epoch, epoch_layout(self.records, self.rows * self.world_size, self.config,
                                                     self.epoch)[1])
        return self._length[1]

    # -- iteration -----------------------------------------------------------------------------------------

    def _job(self) -> ReaderJob:
        return ReaderJob(url=self.url, storage_options=self.storage_options, config=self.config, rank=self.rank,
                         world_size=self.world_size, rows=self.rows, records=self.records, epoch=self.epoch,
                         skip=self._position, seen=sorted(self._seen),
                         pin=self.pin and self.workers == 0)

    def _start(self) -> PartRunner:
        return start_runner(self._job(), self.workers, self.config, self.pin, self.dataset.fs)

    def _next(self) -> dict[str, torch.Tensor]:
        if self._parts is None:
            self._parts = self._start()
        started = time.perf_counter()
        parts = [self._parts.next() for _ in self.rows]
        self._wait_s += time.perf_counter() - started
        for worker, (_, info) in enumerate(parts):
            # Parts of one batch come from every worker in turn, all at the same position.
            expected = (self.rank * len(self.rows) + worker, self.epoch, self._position)
            got = (info["reader"], info["epoch"], info["batch"])
            if self.config.follow:
                expected, got = expected[:1] + (parts[0][1]["batch"],), got[:1] + got[2:]
            if got != expected:
                raise RuntimeError(f"loader parts out of order: got (reader, epoch, batch) {got}, expected {expected}")
            for name, value in info["counters"].items():
                self._counters[name] = self._counters.get(name, 0) + value
            self._gauges[info["reader"]] = info.get("gauges", {})
            self._seen.update(info.get("new_shards", ()))
        self._counters["batches"] = self._counters.get("batches", 0) + 1
        if len(parts) == 1:
            return parts[0][0]
        batch = {}
        for name, first in parts[0][0].items():
            shape = (first.shape[0], self.config.batch_size, *first.shape[2:])
            out = torch.empty(shape, dtype=first.dtype, pin_memory=self.pin)
            batch[name] = torch.cat([tensors[name] for tensors, _ in parts], dim=1, out=out)
        return batch

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        """Fixed mode: the rest of the current epoch, then the epoch counter moves on. Follow mode: endless."""
        if self.config.follow:
            while True:
                batch = self._next()
                self._position += 1
                yield batch
        if self._position >= len(self):
            self.epoch, self._position = self.epoch + 1, 0
        while self._position < len(self):
            batch = self._next()
            self._position += 1
            yield batch
        self.epoch, self._position = self.epoch + 1, 0

    def forever(self) -> Iterator[dict[str, torch.Tensor]]:
        """Batches across epochs without end (fixed mode), or the follow-mode stream."""
        while True:
            yield from self

    def close(self) -> None:
        """Stop the reader thread or worker processes (a later iteration starts them again)."""
        if self._parts is not None:
            self._parts.close()
            self._parts = None

    def __enter__(self) -> StreamingLoader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing left to stop
            pass

    # -- position and metrics ------------------------------------------------------------------------------

    def _layout(self) -> dict[str, Any]:
        c = self.config
        return {"mode": c.mode, "follow": c.follow, "world_size": self.world_size, "rows": list(self.rows),
                "seq_len": c.seq_len, "seed": c.seed, "shuffle_buffer": c.shuffle_buffer,
                "reset_interval": c.reset_interval,
                "shards": fingerprint(self.records) if self.records is not None else None}

    def state_dict(self) -> dict[str, Any]:
        """The position, in plain JSON types (safe for torch.load(weights_only=True))."""
        return {"format": STATE_FORMAT, "version": 1, "epoch": self.epoch, "position": self._position,
                "layout": self._layout(), "seen": sorted(self._seen), "metrics": self.metrics()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a saved position: the rest of the saved epoch (fixed), or no shard re-read as new (follow).

        If the layout changed (world size, workers, batch shape, seed, sampler settings or the shard list),
        the saved position cannot be mapped: the saved epoch starts over, with a warning.
        """
        if state.get("format") != STATE_FORMAT or state.get("version") != 1:
            raise ValueError(f"not a dreamstream loader state (format {state.get('format')!r}, "
                             f"version {state.get('version')!r})")
        self.close()
        self.epoch = int(state["epoch"])
        self._position = int(state["position"])
        self._seen = set(state.get("seen", ()))
        saved, now = state["layout"], self._layout()
        changed = sorted(k for k in now if saved.get(k) != now[k])
        if changed and self._position:
            log.warning("loader layout changed since the checkpoint (%s): epoch %d starts over",
                        ", ".join(f"{k}: {saved.get(k)!r} -> {now[k]!r}" for k in changed), self.epoch)
            self._position = 0
        metrics = state.get("metrics") or {}
        self._counters.update({k: v for k, v in metrics.items() if k not in (*GAUGES, "epoch", "wait_s")})
        self._wait_s = float(metrics.get("wait_s", 0.0))

    def metrics(self) -> dict[str, float]:
        """Counters since the start (of the run, across resumes) and the latest gauges (docs/loader.md)."""
        out: dict[str, float] = dict(self._counters)
        for gauges in self._gauges.values():
            for name, value in gauges.items():
                if name in SUMMED_GAUGES:
                    out[name] = out.get(name, 0) + value
                else:
                    out[name] = max(out.get(name, value), value)
        out["epoch"] = self.epoch
        out["wait_s"] = round(self._wait_s, 6)
        return out


def make_loader(url: str, config: LoaderConfig | None = None, rank: int | None = None,
                world_size: int | None = None, storage_options: dict[str, Any] | None = None) -> StreamingLoader:
    """A streaming loader over the dataset at `url` (any fsspec URL or local path).

    `rank` / `world_size` default to torch.distributed (or the RANK / WORLD_SIZE variables) when set, else 0 / 1.
    Iterate it for batches: dicts of [T, B, ...] tensors, every field of the card plus `reset`, `valid`,
    `episode_step` and `episode_id` (docs/loader.md).
    """
    if rank is None or world_size is None:
        detected_rank, detected_world, _, _ = pytorch_worker_info()
        rank = detected_rank if rank is None else rank
        world_size = detected_world if world_size is None else world_size
    return StreamingLoader(url, config or LoaderConfig(), rank, world_size, storage_options)
