"""Where pipeline tasks run: a Dask LocalCluster of worker processes, an existing scheduler, or in-process.

Every pipeline maps one module-level function over a list of small, picklable task arguments (dataset
URLs, commit records as JSON, options). Nothing secret travels in a task: each worker opens its own
filesystems from the URL, and credentials come from that worker's environment and fsspec config
(AWS_* / FSSPEC_* variables, ~/.aws, ~/.config/fsspec), which LocalCluster workers inherit from the
process that started them and `dask worker` processes take from wherever they run.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from dreamstream.errors import UserError

log = logging.getLogger(__name__)


# glibc malloc settings for LocalCluster workers. Dask sets MALLOC_TRIM_THRESHOLD_=65536 so that workers
# hand freed memory back at once; that also turns off glibc's adaptive mmap threshold, so every buffer
# of a shard (tens of MB) becomes a fresh mmap whose pages the kernel zeroes again: measured 2.45 CPU s/GB
# for deep stats. Serving buffers under 64 MiB from the heap and trimming only above 256 MiB of slack:
# 1.38 CPU s/GB (2.05 with glibc's defaults). Each worker may keep up to ~256 MiB of freed heap.
WORKER_MALLOC = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": 256 * 2**20,
    "distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_": 64 * 2**20,
}


@dataclass
class ClusterConfig:
    """How to run a pipeline's tasks."""

    workers: int = 2
    """Worker processes of the LocalCluster (2 suits a 2-core machine). 0: run every task in this process,
    one after the other, without Dask (debugging, tiny datasets)."""
    threads_per_worker: int = 1
    """Threads per worker process. Decoding and statistics are NumPy work that mostly holds the GIL:
    prefer processes to threads."""
    memory_limit: str = "auto"
    """Per-worker memory limit of the LocalCluster ("auto": the machine's memory divided among workers)."""
    scheduler: str | None = None
    """Address of an existing scheduler (tcp://HOST:PORT); when set, `workers` and the rest are ignored."""
    dashboard_address: str = ":8787"
    """Where the LocalCluster serves its dashboard (":0" for any free port). Needs the bokeh package."""
    progress: bool | None = None
    """Show a progress bar; None: only when stderr is a terminal."""

    def __post_init__(self) -> None:
        if self.workers < 0 or self.threads_per_worker < 1:
            raise UserError(f"--workers must be >= 0 and --threads >= 1 "
                            f"(got {self.workers}, {self.threads_per_worker})")


def add_cluster_arguments(parser: argparse.ArgumentParser, default_workers: int = 2) -> None:
    group = parser.add_argument_group("cluster (Dask)")
    group.add_argument("--scheduler", metavar="tcp://HOST:PORT", default=None,
                       help="run on an existing Dask scheduler instead of starting a LocalCluster")
    group.add_argument("--workers", type=int, default=default_workers, metavar="N",
                       help=f"LocalCluster worker processes (default {default_workers}; 0 = no Dask, "
                            "run tasks in this process)")
    group.add_argument("--threads", type=int, default=1, metavar="N", help="threads per worker (default 1)")
    group.add_argument("--memory-limit", default="auto", help="memory limit per worker (default auto)")
    group.add_argument("--dashboard", default=":8787", metavar="[HOST]:PORT",
                       help="LocalCluster dashboard address (default :8787, ':0' for any free port)")


def cluster_from_args(args: argparse.Namespace) -> ClusterConfig:
    return ClusterConfig(workers=args.workers, threads_per_worker=args.threads, memory_limit=args.memory_limit,
                         scheduler=args.scheduler, dashboard_address=args.dashboard)


class Runner:
    """Maps a task function over task arguments on a Dask client, or in this process when client is None."""

    def __init__(self, client: Any | None, config: ClusterConfig):
        self.client = client
        self.config = config

    @property
    def workers(self) -> int:
        """Number of processes running tasks (1 in-process)."""
        if self.client is None:
            return 1
        return max(1, len(self.client.scheduler_info(n_workers=-1).get("workers", {})))

    def map(self, fn: Callable[..., Any], items: Sequence[tuple], desc: str,
            unit: str = "shard") -> Iterator[tuple[int, Any]]:
        """Yield (index of the item, fn(*item)) as tasks finish, with a progress bar.

        One task per item; results arrive in completion order. A task's exception is raised here
        (after cancelling the rest), with the worker's traceback attached by Dask.
        """
        from tqdm import tqdm

        show = self.config.progress if self.config.progress is not None else sys.stderr.isatty()
        bar = tqdm(total=len(items), desc=desc, unit=unit, disable=not show, file=sys.stderr)
        try:
            if self.client is None:
                for index, item in enumerate(items):
                    yield index, fn(*item)
                    bar.update()
                return
            from distributed import as_completed

            futures = [self.client.submit(fn, *item, pure=False) for item in items]
            index_of = {future.key: i for i, future in enumerate(futures)}
            try:
                for future in as_completed(futures):
                    result = future.result()
                    index = index_of[future.key]
                    futures[index] = None  # free the worker's copy as soon as we hold the result
                    future.release()
                    bar.update()
                    yield index, result
            finally:
                pending = [f for f in futures if f is not None and not f.done()]
                if pending:
                    self.client.cancel(pending)
        finally:
            bar.close()


def _dashboard_note(client: Any, local: bool) -> str:
    """The dashboard address; a LocalCluster serves one only if bokeh is installed here."""
    if local and importlib.util.find_spec("bokeh") is None:
        return "dashboard off (install bokeh to serve it)"
    return f"dashboard {client.dashboard_link}"


@contextlib.contextmanager
def open_runner(config: ClusterConfig) -> Iterator[Runner]:
    """A Runner on a new LocalCluster, an existing scheduler, or in-process; closed on exit."""
    if config.scheduler is None and config.workers == 0:
        log.info("running tasks in this process (--workers 0)")
        yield Runner(None, config)
        return
    from distributed import Client, LocalCluster

    if not log.isEnabledFor(logging.DEBUG):  # Dask's own INFO lines drown ours; -v shows them
        logging.getLogger("distributed").setLevel(logging.WARNING)
    if config.scheduler is not None:
        try:
            client = Client(config.scheduler, timeout="30s")
        except OSError as exc:
            raise UserError(f"cannot reach the Dask scheduler at {config.scheduler}: {exc}") from exc
        with client:
            n = len(client.scheduler_info(n_workers=-1).get("workers", {}))
            log.info("Dask scheduler %s: %d worker(s); %s", config.scheduler, n, _dashboard_note(client, local=False))
            if n == 0:
                log.warning("the scheduler has no workers yet; tasks wait until one connects")
            yield Runner(client, config)
        return
    import dask

    with dask.config.set(WORKER_MALLOC), LocalCluster(
        n_workers=config.workers, threads_per_worker=config.threads_per_worker, processes=True,
        memory_limit=config.memory_limit, dashboard_address=config.dashboard_address,
    ) as cluster:
        with Client(cluster) as client:
            log.info("Dask LocalCluster: %d worker process(es) x %d thread(s); %s", config.workers,
                     config.threads_per_worker, _dashboard_note(client, local=True))
            yield Runner(client, config)
