"""Actor-critic in imagination (DreamerV2/PyDreamer): roll the prior forward from every posterior state.

The critic regresses lambda-returns computed with a target critic (copied every `target_interval` steps);
the actor maximises them, either by REINFORCE (log-prob times advantage, the target critic as baseline)
or by backpropagating through the learned dynamics (reparameterised or straight-through actions).
Both losses weight each imagined state by the predicted probability that no episode end came first.
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import torch
from torch import Tensor, nn

from dreamstream.train.model.actions import ActionCodec
from dreamstream.train.model.config import ModelConfig
from dreamstream.train.model.functional import discount_weights, lambda_return, masked_mean
from dreamstream.train.model.heads import RewardHead, TerminalHead
from dreamstream.train.model.networks import mlp
from dreamstream.train.model.rssm import RSSM, RSSMState


class Actor(nn.Module):
    """features -> action distribution parameters; `dist` does the sampling maths."""

    def __init__(self, config: ModelConfig, codec: ActionCodec) -> None:
        super().__init__()
        self.dist = codec.dist(config.continuous_dist)
        self.net = mlp(config.feature_size, self.dist.params_size, config.ac_hidden, config.ac_layers,
                       config.layer_norm)

    def forward(self, features: Tensor) -> Tensor:
        return self.net(features).float()

    def act(self, features: Tensor, greedy: bool = False, reparam: bool = False) -> Tensor:
        """A raw action (one-hot or pre-squash vector): the mode when greedy, else a sample."""
        params = self.forward(features)
        return self.dist.mode(params) if greedy else self.dist.sample(params, reparam)


class Critic(nn.Module):
    """features -> expected lambda-return."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.net = mlp(config.feature_size, 1, config.ac_hidden, config.ac_layers, config.layer_norm)

    def forward(self, features: Tensor) -> Tensor:
        return self.net(features).float().squeeze(-1)


class Imagined(NamedTuple):
    """An imagined rollout: features [H+1, N, F] (start state first) and raw actions [H, N, A]."""

    features: Tensor
    actions: Tensor


def resolve_actor_grad(config: ModelConfig, discrete: bool) -> str:
    """`auto` -> reinforce for discrete actions, dynamics for continuous ones."""
    if config.actor_grad == "auto":
        return "reinforce" if discrete else "dynamics"
    return config.actor_grad


def imagine(rssm: RSSM, actor: Actor, start: RSSMState, horizon: int, dynamics: bool) -> Imagined:
    """Roll the prior `horizon` steps from `start` [N, ...] under the actor.

    With `dynamics` the actions are reparameterised and the rollout keeps its graph (the actor's gradient
    flows back through the RSSM); otherwise it runs without a graph. The actor reads detached features.
    """
    context = contextlib.nullcontext() if dynamics else torch.no_grad()
    with context:
        state = start
        features = [rssm.features(state)]
        actions = []
        for _ in range(horizon):
            raw = actor.act(features[-1].detach(), reparam=dynamics)
            state, _ = rssm.img_step(state, actor.dist.squash(raw))
            features.append(rssm.features(state))
            actions.append(raw)
    return Imagined(torch.stack(features), torch.stack(actions))


def actor_critic_losses(imagined: Imagined, actor: Actor, critic: Critic, critic_target: Critic,
                        reward_head: RewardHead, terminal_head: TerminalHead, config: ModelConfig,
                        actor_grad: str, start_weight: Tensor | None = None
                        ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """(actor loss, critic loss, metrics) of one imagined rollout batch; `start_weight` [N] (0/1) weights
    each rollout (0: started from a padding row), in the losses and in every metric."""
    feats, actions = imagined
    horizon = actions.shape[0]
    assert feats.shape[0] == horizon + 1, (feats.shape, actions.shape)
    dynamics = actor_grad == "dynamics"
    with contextlib.nullcontext() if dynamics else torch.no_grad():
        reward = reward_head.mean(feats[1:])  # r_{t+1}: [H, N]
        cont = terminal_head.cont(feats)  # c_t: [H+1, N]
        target_value = critic_target(feats)  # [H+1, N]
        returns = lambda_return(reward, target_value, cont[1:], config.gamma, config.return_lambda)
    weight = discount_weights(cont[:-1]).detach()

    def mean(x: Tensor) -> Tensor:  # over time and the rollouts that count
        return masked_mean(x, start_weight)

    value = critic(feats[:-1].detach())
    loss_critic = mean(0.5 * (value - returns.detach()).square() * weight)

    params = actor(feats[:-1].detach())
    entropy = actor.dist.entropy(params)
    if dynamics:
        objective = returns
    elif actor_grad == "reinforce":
        advantage = (returns - target_value[:-1]).detach()
        objective = actor.dist.log_prob(params, actions.detach()) * advantage
    else:
        raise ValueError(f"unknown actor_grad {actor_grad!r}; expected reinforce or dynamics")
    loss_actor = mean(-(objective + config.actor_entropy * entropy) * weight)

    with torch.no_grad():
        metrics = {
            "loss/actor": loss_actor.detach(),
            "loss/critic": loss_critic.detach(),
            "entropy/policy": mean(entropy),
            "value/mean": mean(value),
            "value/start": mean(value[0]),
            "return/mean": mean(returns),
            "reward/imagined": mean(reward),
            "cont/imagined": mean(cont),
        }
    return loss_actor, loss_critic, metrics
