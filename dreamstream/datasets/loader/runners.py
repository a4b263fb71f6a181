"""Where a loader's readers run: inline, in one background thread, or in torch DataLoader worker processes.

Each runner turns a ReaderJob into a sequence of batch parts with `next()` (StopIteration at the end of a
fixed-mode epoch) and `close()`; the StreamingLoader joins the parts of its runners into batches.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

from torch.utils.data import DataLoader

from dreamstream.datasets.loader.config import LoaderConfig
from dreamstream.datasets.loader.shards import Stopped
from dreamstream.datasets.loader.stream import Part, ReaderJob, ReaderStream
from dreamstream.datasets.storage import is_local


def _identity(part: Any) -> Any:  # DataLoader collate_fn: parts are already tensors (module-level: picklable)
    return part


class InlineParts:
    """workers = 0, prefetch = 0: the reader runs in the caller's thread."""

    def __init__(self, job: ReaderJob):
        self._parts = iter(ReaderStream(job))

    def next(self) -> Part:
        return next(self._parts)

    def close(self) -> None:
        close = getattr(self._parts, "close", None)
        if close is not None:
            close()


class ThreadParts:
    """workers = 0: the reader runs in one background thread, `prefetch` batches ahead.

    Shard reads, zstd and the copies release the GIL, so this overlaps with training on a small machine
    without copying batches between processes.
    """

    def __init__(self, job: ReaderJob, prefetch: int):
        self.stop = threading.Event()
        self.queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=prefetch)
        self.thread = threading.Thread(target=self._run, args=(ReaderStream(job, self.stop),), daemon=True,
                                       name="dreamstream-loader")
        self.thread.start()

    def _put(self, item: tuple[str, Any]) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, stream: ReaderStream) -> None:
        parts = iter(stream)
        try:
            for part in parts:
                if not self._put(("part", part)):
                    return
            self._put(("end", None))
        except Stopped:
            return
        except BaseException as exc:  # handed to the trainer's thread, raised there
            self._put(("error", exc))
        finally:
            close = getattr(parts, "close", None)
            if close is not None:
                close()

    def next(self) -> Part:
        while True:
            try:
                kind, value = self.queue.get(timeout=1.0)
                break
            except queue.Empty:
                if not self.thread.is_alive():
                    raise RuntimeError("the loader thread ended without a batch or an error") from None
        if kind == "error":
            raise value
        if kind == "end":
            raise StopIteration
        return value

    def close(self) -> None:
        self.stop.set()
        while True:
            try:
                self.queue.get_nowait()
            except queue.Empty:
                break
        self.thread.join(timeout=10)


class WorkerParts:
    """workers > 0: a torch DataLoader whose workers each run one reader."""

    def __init__(self, job: ReaderJob, workers: int, prefetch: int, pin: bool, start_method: str):
        self.loader = DataLoader(ReaderStream(job), batch_size=None, num_workers=workers,
                                 prefetch_factor=max(1, prefetch), pin_memory=pin, collate_fn=_identity,
                                 multiprocessing_context=start_method, persistent_workers=False)
        self._parts = iter(self.loader)

    def next(self) -> Part:
        return next(self._parts)

    def close(self) -> None:
        shutdown = getattr(self._parts, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()
        del self._parts


PartRunner = InlineParts | ThreadParts | WorkerParts


def start_runner(job: ReaderJob, workers: int, config: LoaderConfig, pin: bool, fs: Any) -> PartRunner:
    """The runner `loader.workers` and `loader.prefetch` ask for; worker processes fork on local and memory
    filesystems (cheap, nothing to re-open) and spawn otherwise (object-store clients do not survive a fork)."""
    if workers == 0:
        return ThreadParts(job, config.prefetch) if config.prefetch else InlineParts(job)
    method = config.start_method
    if method == "auto":
        method = "fork" if is_local(fs) or "memory" in fs.protocol else "spawn"
    return WorkerParts(job, workers, config.prefetch, pin and workers == 1, method)
