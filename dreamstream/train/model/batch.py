"""The batch contract between the loader and the agent, checked at the boundary (shapes and dtypes only).

A batch is a dict of time-major tensors [T, B, ...]: every observation field the model reads, `action`
(int64 [T, B] or float32 [T, B, *shape]), `reward` float32, and bool `is_first`, `is_terminal`, `reset`
(`is_last` may be present; the maths never reads it). Checking costs no device sync: values are not read.

A loader batch also holds bool `valid` [T, B]: False on padding rows (rows no chunk covers, or whose shard
was skipped). `mask_padding` makes padding inert: those rows are zeroed, the model state restarts on them and
on the row after each, and the losses weight them 0 (docs: the loader's "Batch fields").
"""

from __future__ import annotations

import torch
from torch import Tensor

from dreamstream.datasets.loader.batch import RESET, VALID, torch_dtype
from dreamstream.datasets.spec import EpisodeSpec, FieldSpec
from dreamstream.errors import UserError

ROW_FIELDS = ("action", "reward", "is_first", "is_terminal", RESET)
"""Non-observation fields the training step reads (`valid`, when present, marks padding rows)."""

_RESET = FieldSpec(shape=(), dtype="bool", kind="flag")


def check_batch(batch: dict[str, Tensor], spec: EpisodeSpec, fields: list[str]) -> tuple[int, int]:
    """Raise UserError naming the first missing or malformed field; return (T, B)."""
    need = [*fields, *ROW_FIELDS]
    missing = [name for name in need if name not in batch]
    if missing:
        raise UserError(f"batch is missing field(s) {missing}; it has {sorted(batch)}")
    reset = batch[RESET]
    if reset.dim() != 2:
        raise UserError(f"batch field 'reset' has shape {tuple(reset.shape)}; expected [T, B]")
    steps, size = reset.shape
    for name in need:
        field = _RESET if name == RESET else spec.fields[name]
        tensor = batch[name]
        want_shape = (steps, size, *field.shape)
        if tuple(tensor.shape) != want_shape:
            raise UserError(f"batch field {name!r} has shape {tuple(tensor.shape)}; expected {want_shape} "
                            f"([T, B] + the spec's shape {field.shape})")
        if tensor.dtype != torch_dtype(field.dtype):
            raise UserError(f"batch field {name!r} has dtype {tensor.dtype}; the spec says {field.dtype}")
    return steps, size


def mask_padding(batch: dict[str, Tensor]) -> tuple[dict[str, Tensor], Tensor | None]:
    """(batch with padding made inert, float weight [T, B] = valid) or (batch, None) when it has no `valid`.

    Every [T, B, ...] field is zeroed on padding rows (so garbage there, even NaN or an out-of-range class,
    cannot reach a loss or a gradient), and `reset` is set on padding rows and on the row after each (so no
    state computed from padding carries into real data). No device sync: values are not read.
    """
    if VALID not in batch:
        return batch, None
    valid = batch[VALID].to(torch.bool)
    invalid = ~valid
    out: dict[str, Tensor] = {}
    for name, tensor in batch.items():
        if name != VALID and tuple(tensor.shape[:2]) == tuple(valid.shape):
            keep = valid.reshape(*valid.shape, *([1] * (tensor.dim() - 2)))
            tensor = torch.where(keep, tensor, torch.zeros((), dtype=tensor.dtype, device=tensor.device))
        out[name] = tensor
    after = torch.cat([torch.zeros_like(invalid[:1]), invalid[:-1]])  # the row after a padding row
    out[RESET] = batch[RESET] | invalid | after
    out[VALID] = valid
    return out, valid.float()
