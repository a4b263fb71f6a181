"""The trainer process's runtime: which device, how many torch threads, and every random generator's state.

Seeding and RNG state live together so that a checkpoint restores exactly what `seed_everything` set up.
"""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (all devices); optionally ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)


def rng_state() -> dict[str, Any]:
    """torch, NumPy and Python RNG states in types that torch.load(weights_only=True) accepts."""
    numpy_state = np.random.get_state(legacy=False)
    numpy_state["state"]["key"] = torch.from_numpy(numpy_state["state"]["key"].astype(np.int64))
    return {"torch": torch.get_rng_state(), "numpy": numpy_state, "python": random.getstate()}


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` returned."""
    numpy_state = dict(state["numpy"])
    numpy_state["state"] = {**numpy_state["state"], "key": state["numpy"]["state"]["key"].numpy().astype(np.uint32)}
    np.random.set_state(numpy_state)
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])


def size_torch_threads(busy_processes: int = 0, configured: int = 0) -> int:
    """Give torch the cores that `busy_processes` (collectors, evaluation) leave, at least 1, or `configured`.

    Every command that runs a model calls this: torch threads that outnumber free cores spin against each
    other (a step measured 10-100x slower on a 2-core machine), which OMP_NUM_THREADS=1 used to paper over.
    """
    threads = configured or max(1, (os.cpu_count() or 1) - busy_processes)
    torch.set_num_threads(threads)
    return threads


def default_device() -> torch.device:
    """cuda when present, else cpu."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
