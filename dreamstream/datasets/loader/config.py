"""LoaderConfig: every setting of the streaming loader, typed, with its default and what it does.

It is the `loader:` section of the presets (dreamstream.settings.SECTIONS); docs/loader.md explains each
field with advice for small (2-core) and large machines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class LoaderConfig:
    """How committed shards become [T, B] training batches."""

    batch_size: int = 16
    """B: rows per batch (per rank). With `workers` > 1 the rows are split among the workers, each worker
    streaming its own rows; the batch you get always has B rows."""
    seq_len: int = 50
    """T: time steps per batch row."""
    mode: Literal["tbtt", "windows"] = "tbtt"
    """tbtt: each row continues its episode from the previous batch (carry the model state over; start it
    from zero where `reset` is set). windows: each row is an independent window of T steps drawn uniformly
    from a shuffle buffer (start every row's state from zero)."""
    follow: bool = False
    """False: fixed mode, an offline corpus read in epochs with exact coverage. True: follow mode, an online
    dataset re-listed every `relist_interval_s`; new shards are read first, older ones replayed; endless."""
    relist_interval_s: float = 5.0
    """Follow mode: seconds between listings of the commit records; a shard committed now is seen within it."""
    replay_window: int = 1_000_000
    """Follow mode: replay draws only from the newest shards that hold this many steps (0 = every shard);
    this bounds how stale replayed data can be (PyDreamer's buffer_size)."""
    reset_interval: int = 200
    """TBTT: a row's state is reset at a batch start with probability T / reset_interval, so on average
    once every reset_interval steps (PyDreamer's random resets); 0 disables them."""
    shuffle_buffer: int = 10_000
    """Steps of chunks held per reader waiting to be used: shards are shuffled, then chunks are drawn at
    random from this buffer. Buffered shards stay compressed; a chunk is decoded when a batch first needs
    it (TBTT: about one decoded chunk per row; windows: every buffered chunk once drawn, about
    shuffle_buffer x 12 KB for 64x64x3 frames). Larger also lets a chunked episode find its next chunk."""
    workers: int = 0
    """DataLoader worker processes per rank. 0: one background thread in the trainer's process (best on
    2-4 cores: no copies between processes). On large machines 2-8 workers (each streams B / workers rows;
    B must be at least `workers`)."""
    prefetch: int = 2
    """Batches prepared ahead (per worker with workers > 0; 0 with workers = 0 reads synchronously)."""
    io_threads: int = 2
    """Threads per reader that read and verify shards ahead of use and decode the next batch's chunks
    (0: all of it in the reader's own thread, when first needed)."""
    on_error: Literal["skip", "raise"] = "skip"
    """A shard that still fails after `retries`: skip it (counted in metrics, its rows become padding with
    valid=False) or raise a DatasetError naming the shard."""
    retries: int = 3
    """Extra attempts to read a shard that fails to read (missing, checksum mismatch, store unreachable)
    or to list the commit records (follow mode). A shard whose size differs from its commit record's is
    not read at all, nor retried. A store still failing after the retries raises, whatever `on_error`."""
    retry_backoff_s: float = 0.5
    """Sleep before the first retry; doubles on each further retry."""
    failure_window: int = 20
    """How many of its latest shard reads a reader remembers for `max_failed_share`."""
    max_failed_share: float = 0.5
    """With `on_error: skip`, raise a DatasetError once more than this share of `failure_window` shard reads
    failed (a shard fails when it cannot be read or one of its samples does not decode): a broken dataset
    stops training instead of feeding it padding. 1.0 never raises."""
    verify: bool = True
    """Check each shard's size and sha256 against its commit record before decoding it."""
    seed: int = 0
    """Seeds the shard shuffle (with the epoch), the chunk draws and the random resets: same seed, same
    data and same batches, on any store."""
    pin_memory: bool = True
    """When CUDA is available, hand out batches in pinned memory (for non_blocking copies to the GPU)."""
    start_method: Literal["auto", "fork", "spawn", "forkserver"] = "auto"
    """How DataLoader workers start. auto: fork for local disk and memory://, spawn for object stores
    (s3fs and gcsfs are not fork-safe once used)."""

    def __post_init__(self) -> None:
        positive = {"batch_size": self.batch_size, "seq_len": self.seq_len, "shuffle_buffer": self.shuffle_buffer,
                    "relist_interval_s": self.relist_interval_s, "failure_window": self.failure_window,
                    "max_failed_share": self.max_failed_share}
        bad = [f"{k}={v!r}" for k, v in positive.items() if not v > 0]
        non_negative = {"replay_window": self.replay_window, "reset_interval": self.reset_interval,
                        "workers": self.workers, "prefetch": self.prefetch, "io_threads": self.io_threads,
                        "retries": self.retries, "retry_backoff_s": self.retry_backoff_s}
        bad += [f"{k}={v!r}" for k, v in non_negative.items() if v < 0]
        if self.max_failed_share > 1:
            bad.append(f"max_failed_share={self.max_failed_share!r} (at most 1)")
        if bad:
            raise ValueError(f"loader settings out of range: {', '.join(bad)}")
        if self.mode not in ("tbtt", "windows"):
            raise ValueError(f"loader.mode must be 'tbtt' or 'windows', not {self.mode!r}")
        if self.on_error not in ("skip", "raise"):
            raise ValueError(f"loader.on_error must be 'skip' or 'raise', not {self.on_error!r}")
        if self.workers and self.batch_size < self.workers:
            raise ValueError(f"loader.batch_size ({self.batch_size}) must be at least loader.workers "
                             f"({self.workers}): each worker streams its own rows of the batch")
