"""Run hostile-input code under a memory ceiling and a time limit, and report what it used.

Crafted shards, records and snapshots must fail fast and small. `bounded` measures the peak of Python and
NumPy allocations with tracemalloc (NumPy reports its buffers to it) and interrupts the block with SIGALRM
when it runs past its time, so a hang or an allocation that a header dictated fails the test instead of
the machine. Use it in the main thread (pytest runs tests there), with the expected error caught inside:

    with bounded(64, 10) as usage, pytest.raises(DatasetError, match="shard"):
        read_shard(url)
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import time
import tracemalloc
from collections.abc import Iterator


@dataclasses.dataclass
class Usage:
    peak_bytes: int = 0
    seconds: float = 0.0


class TooSlow(AssertionError):
    """The block ran past its time limit (a hang on crafted input)."""


@contextlib.contextmanager
def bounded(memory_mb: float = 64, seconds: float = 10) -> Iterator[Usage]:
    """`with bounded(64, 10) as usage: ...` fails if the block allocates more than `memory_mb` at its peak
    or runs longer than `seconds`; `usage` holds the peak and the time afterwards."""
    usage = Usage()

    def on_alarm(signum, frame):
        raise TooSlow(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base, _ = tracemalloc.get_traced_memory()
    start = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield usage
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        usage.seconds = time.perf_counter() - start
        usage.peak_bytes = max(tracemalloc.get_traced_memory()[1] - base, 0)
        if not was_tracing:
            tracemalloc.stop()
    assert usage.peak_bytes <= memory_mb * 2**20, (
        f"peak allocation {usage.peak_bytes / 2**20:.1f} MiB is over the {memory_mb} MiB bound")
