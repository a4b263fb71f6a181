"""Latents: the world model's states for consecutive rows of one episode, as the dream API hands them out."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from dreamstream.train.model.rssm import RSSMState


@dataclasses.dataclass(frozen=True)
class Latents:
    """Model states of consecutive rows of one episode.

    deter [T, deter] and stoch [T, stoch_size] (flat: one one-hot of `classes` per categorical variable, or
    Gaussian values) are what the heads read; `dist` [T, P] are the parameters of the distribution each z was
    taken from (the posterior for `encode`, the prior for `imagine`), `prior` [T, P] the prior's. `steps`
    are the episode rows the states stand for; `actions` the env actions that led to them (None: recorded).
    """

    deter: Tensor
    stoch: Tensor
    dist: Tensor
    prior: Tensor
    steps: np.ndarray
    actions: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.deter.shape[0])

    def __getitem__(self, index: slice | Sequence[int] | np.ndarray) -> Latents:
        """A sub-sequence (a slice or row indices): still a Latents."""
        idx = index if isinstance(index, slice) else torch.as_tensor(np.asarray(index), dtype=torch.long)
        rows = index if isinstance(index, slice) else np.asarray(index)
        return Latents(self.deter[idx], self.stoch[idx], self.dist[idx], self.prior[idx], self.steps[rows],
                       None if self.actions is None else self.actions[rows])

    @property
    def state(self) -> RSSMState:
        return RSSMState(self.deter, self.stoch)

    def to_numpy(self, prefix: str = "") -> dict[str, np.ndarray]:
        """Every array, for np.savez (`prefix` + name)."""
        out = {name: getattr(self, name).detach().float().cpu().numpy()
               for name in ("deter", "stoch", "dist", "prior")}
        out["steps"] = self.steps
        if self.actions is not None:
            out["actions"] = self.actions
        return {prefix + k: v for k, v in out.items()}
