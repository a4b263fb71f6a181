"""Reward and termination heads of the world model.

Reward: a unit-variance Gaussian (MSE), PyDreamer's categorical over a fixed support (nearest value), or
DreamerV3's symlog two-hot. Termination: a Bernoulli trained on `is_terminal` only; a truncation
(`is_last` without `is_terminal`) is not an end of the MDP, so the critic keeps bootstrapping through it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dreamstream.train.model.config import ModelConfig
from dreamstream.train.model.functional import nearest_onehot, symexp, symlog, twohot
from dreamstream.train.model.networks import mlp


class RewardHead(nn.Module):
    """features [*B, F] -> reward distribution; `loss` gives the NLL [*B], `mean` the expected reward [*B]."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.kind = config.reward_head
        if self.kind == "normal":
            out = 1
        elif self.kind == "support":
            support = torch.tensor(config.reward_support, dtype=torch.float32)
            if support.numel() < 2 or not bool((support[1:] > support[:-1]).all()):
                raise ValueError(f"model.reward_support must be ascending with >= 2 values: {config.reward_support}")
            self.register_buffer("values", support, persistent=False)
            out = support.numel()
        elif self.kind == "twohot":
            bins = torch.linspace(-config.twohot_range, config.twohot_range, config.twohot_bins)
            self.register_buffer("values", bins, persistent=False)
            out = config.twohot_bins
        else:
            raise ValueError(f"unknown reward_head {self.kind!r}")
        self.net = mlp(config.feature_size, out, config.dense_hidden, config.head_layers, config.layer_norm)
        self.zero_output()

    def zero_output(self) -> None:
        """Categorical heads start from a uniform prediction (DreamerV3): zero reward, no early value blow-up."""
        if self.kind != "normal":
            last = self.net[-1]
            assert isinstance(last, nn.Linear)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def forward(self, features: Tensor) -> Tensor:
        """Raw outputs: the mean for `normal`, logits otherwise."""
        out = self.net(features).float()
        return out.squeeze(-1) if self.kind == "normal" else out

    def target(self, reward: Tensor) -> Tensor:
        """The training target of a reward: itself, its nearest support one-hot, or its symlog two-hot."""
        if self.kind == "normal":
            return reward.float()
        if self.kind == "support":
            return nearest_onehot(reward.float(), self.values)
        return twohot(symlog(reward.float()), self.values)

    def mean_from(self, out: Tensor) -> Tensor:
        if self.kind == "normal":
            return out
        expected = (torch.softmax(out, -1) * self.values).sum(-1)
        return symexp(expected) if self.kind == "twohot" else expected

    def mean(self, features: Tensor) -> Tensor:
        return self.mean_from(self.forward(features))

    def loss(self, features: Tensor, reward: Tensor) -> Tensor:
        out = self.forward(features)
        target = self.target(reward)
        if self.kind == "normal":
            return 0.5 * (out - target).square()
        return -(target * torch.log_softmax(out, -1)).sum(-1)


class TerminalHead(nn.Module):
    """features [*B, F] -> logit of `is_terminal`; the continuation probability is 1 - sigmoid(logit)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.net = mlp(config.feature_size, 1, config.dense_hidden, config.head_layers, config.layer_norm)

    def forward(self, features: Tensor) -> Tensor:
        return self.net(features).float().squeeze(-1)

    def loss(self, features: Tensor, is_terminal: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(self.forward(features), is_terminal.float(), reduction="none")

    def cont(self, features: Tensor) -> Tensor:
        """Probability that the episode continues after this state."""
        return torch.sigmoid(-self.forward(features))
