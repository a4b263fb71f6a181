"""Actions between the dataset/env and the model: one-hot made on the device, Box actions scaled to [-1, 1].

The dataset stores discrete actions as int64 indices and continuous ones in the env's units; the model
sees a float vector (one-hot, or the Box scaled to [-1, 1]) and the actor's outputs go back the same way.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dreamstream.datasets.spec import ActionSpec
from dreamstream.errors import UserError
from dreamstream.train.model.distributions import ActionDist, OneHotActions, TanhNormalActions, TruncNormalActions


class ActionCodec(nn.Module):
    """Converts actions between the env's form and the model's float vectors; no parameters.

    Box bounds are non-persistent buffers so they follow `.to(device)` but stay out of the state dict.
    An unbounded Box axis is passed through unscaled (the actor's [-1, 1] output is then the action).
    """

    def __init__(self, spec: ActionSpec) -> None:
        super().__init__()
        self.spec = spec
        self.discrete = spec.kind == "discrete"
        self.size = spec.size
        if not self.discrete:
            if spec.kind != "continuous":
                raise UserError(f"unsupported action kind {spec.kind!r}; expected discrete or continuous")
            low = torch.tensor(spec.low or [-1.0] * self.size, dtype=torch.float32)
            high = torch.tensor(spec.high or [1.0] * self.size, dtype=torch.float32)
            finite = torch.isfinite(low) & torch.isfinite(high)
            center = torch.where(finite, (high + low) / 2, torch.zeros_like(low))
            half = torch.where(finite, (high - low) / 2, torch.ones_like(low))
            self.register_buffer("offset", center, persistent=False)
            self.register_buffer("scale", half.clamp_min(1e-8), persistent=False)

    def dist(self, continuous_dist: str) -> ActionDist:
        """The actor's output distribution for this action space."""
        if self.discrete:
            return OneHotActions(self.size)
        if continuous_dist == "tanh_normal":
            return TanhNormalActions(self.size)
        if continuous_dist == "trunc_normal":
            return TruncNormalActions(self.size)
        raise UserError(f"unknown continuous_dist {continuous_dist!r}; expected tanh_normal or trunc_normal")

    def encode(self, action: Tensor, is_first: Tensor) -> Tensor:
        """Dataset actions [*B] (int64) or [*B, *shape] (float) -> model vectors [*B, size], zero on first rows."""
        if self.discrete:
            vec = F.one_hot(action.long(), self.size).float()
        else:
            flat = action.float().reshape(*is_first.shape, self.size)
            vec = (flat - self.offset) / self.scale
        return vec * (~is_first).unsqueeze(-1).float()

    def decode(self, vec: Tensor) -> Tensor:
        """Model vectors [*B, size] (one-hot or [-1, 1]) -> env actions: int64 [*B] or float32 [*B, *shape]."""
        if self.discrete:
            return vec.argmax(-1)
        out = vec.float() * self.scale + self.offset
        return out.unflatten(-1, self.spec.shape) if self.spec.shape else out.squeeze(-1)

    def extra_repr(self) -> str:
        return f"discrete n={self.size}" if self.discrete else f"continuous shape={self.spec.shape}"
