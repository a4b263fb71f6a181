"""Building blocks shared by every part of the agent: the MLP, the two GRU cells, TF2-style initialisation."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def mlp(in_dim: int, out_dim: int, hidden: int, layers: int, layer_norm: bool = True,
        out_act: bool = False) -> nn.Sequential:
    """`layers` x (Linear -> LayerNorm -> ELU) then Linear to `out_dim` (ELU after it when `out_act`)."""
    mods: list[nn.Module] = []
    dim = in_dim
    for _ in range(layers):
        mods += [nn.Linear(dim, hidden), nn.LayerNorm(hidden, eps=1e-3) if layer_norm else nn.Identity(), nn.ELU()]
        dim = hidden
    mods.append(nn.Linear(dim, out_dim))
    if out_act:
        mods.append(nn.ELU())
    return nn.Sequential(*mods)


class NormGRUCell(nn.Module):
    """DreamerV2's GRU: one LayerNorm over all gates, reset applied late, update gate biased by -1."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.linear = nn.Linear(input_size + hidden_size, 3 * hidden_size, bias=False)
        self.norm = nn.LayerNorm(3 * hidden_size, eps=1e-3)

    def forward(self, x: Tensor, h: Tensor) -> Tensor:
        gates = self.norm(self.linear(torch.cat([x, h], -1)))
        reset, cand, update = gates.chunk(3, -1)
        reset = torch.sigmoid(reset)
        cand = torch.tanh(reset * cand)
        update = torch.sigmoid(update - 1.0)
        return update * cand + (1.0 - update) * h


def make_gru(kind: str, input_size: int, hidden_size: int) -> nn.Module:
    """`gru` (torch GRUCell) or `norm_gru` (DreamerV2's layer-normed cell)."""
    if kind == "gru":
        return nn.GRUCell(input_size, hidden_size)
    if kind == "norm_gru":
        return NormGRUCell(input_size, hidden_size)
    raise ValueError(f"unknown gru kind {kind!r}; expected gru or norm_gru")


def init_weights(module: nn.Module) -> None:
    """TF2/Keras defaults as DreamerV2 had them: Xavier-uniform kernels, zero biases, orthogonal recurrences."""
    if isinstance(module, nn.Linear | nn.Conv2d | nn.ConvTranspose2d):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.GRUCell):
        nn.init.xavier_uniform_(module.weight_ih)
        nn.init.orthogonal_(module.weight_hh)
        nn.init.zeros_(module.bias_ih)
        nn.init.zeros_(module.bias_hh)
