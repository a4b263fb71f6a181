"""The batch contract (docs/loader.md, "Batch fields"): the fields the loader adds to the card's, the torch
dtype of each spec dtype, and moving a batch to a device. The loader produces batches; the model's check
(dreamstream.train.model.batch) imports these names rather than spelling them again.

A padding row (rows no chunk covers, or whose shard or sample was skipped) holds zeros, `valid` False,
`reset` True, `episode_step` -1 and `episode_id` 0. The model makes padding inert (it trains nothing, and
the state restarts after it) whatever a batch holds there: `dreamstream.train.model.batch.mask_padding`.
"""

from __future__ import annotations

import numpy as np
import torch

RESET, VALID, EPISODE_STEP, EPISODE_ID = "reset", "valid", "episode_step", "episode_id"
LOADER_FIELDS = (RESET, VALID, EPISODE_STEP, EPISODE_ID)
"""Batch fields the loader adds to the card's fields; no card field may have one of these names."""


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype of a NumPy dtype name ('uint8' -> torch.uint8)."""
    return torch.from_numpy(np.zeros(0, dtype=np.dtype(name))).dtype


def to_device(batch: dict[str, torch.Tensor], device: torch.device | str) -> dict[str, torch.Tensor]:
    """Every tensor of a batch on `device`, copied without blocking (overlaps with compute from pinned memory)."""
    return {name: tensor.to(device, non_blocking=True) for name, tensor in batch.items()}
