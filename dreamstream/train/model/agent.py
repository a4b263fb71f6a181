"""The DreamerV2 agent: world model, actor, critic (+ target) and the optional map probe, as one module.

`losses` is the whole differentiable part of a training step (compiled as one function when asked);
`policy` acts for B environments. Optimisers, precision and clipping live in dreamstream.train.loop.learner.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from dreamstream.datasets.spec import EpisodeSpec
from dreamstream.train.model.acting import PolicyState, initial_policy_state, policy_step
from dreamstream.train.model.actor_critic import Actor, Critic, actor_critic_losses, imagine, resolve_actor_grad
from dreamstream.train.model.batch import mask_padding
from dreamstream.train.model.config import ModelConfig
from dreamstream.train.model.encoders import MAP_FIELD, split_fields
from dreamstream.train.model.networks import init_weights
from dreamstream.train.model.probe import MapProbe
from dreamstream.train.model.rssm import RSSMState
from dreamstream.train.model.world_model import WorldModel, WorldModelOutput

LOSS_KEYS = ("model", "actor", "critic", "probe")
"""One loss per optimiser."""


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Parameters of `module` stop requiring gradients inside the block (activations still carry them)."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class Agent(nn.Module):
    """Sized from the dataset spec; every part is reachable by name for the optimisers and the snapshot."""

    def __init__(self, spec: EpisodeSpec, config: ModelConfig) -> None:
        super().__init__()
        self.spec, self.config = spec, config
        self.wm = WorldModel(spec, config)
        self.actor = Actor(config, self.wm.codec)
        self.critic = Critic(config)
        self.critic_target = Critic(config)
        _, probe_field = split_fields(spec, config.map_probe)
        self.probe = MapProbe(probe_field, config) if probe_field is not None else None
        self.actor_grad = resolve_actor_grad(config, self.wm.codec.discrete)
        self.apply(init_weights)
        self.wm.reward.zero_output()
        self.critic_target.requires_grad_(False)
        self.update_target()

    @property
    def input_fields(self) -> list[str]:
        """Observation fields the model reads (and the probe's `map` when it is trained)."""
        fields = list(self.wm.input_fields)
        return [*fields, MAP_FIELD] if self.probe is not None else fields

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> RSSMState:
        """The zero RSSM state of a training batch of `batch_size` sequences."""
        return self.wm.rssm.initial(batch_size, device)

    def update_target(self) -> None:
        """Copy the critic into the target critic."""
        self.critic_target.load_state_dict(self.critic.state_dict())

    def model_losses(self, batch: dict[str, Tensor], state: RSSMState
                     ) -> tuple[WorldModelOutput, Tensor, dict[str, Tensor]]:
        """World-model output, probe loss and probe metrics of a batch (one compilable graph); padding rows
        (`valid` False) weigh 0 in every loss."""
        batch, weight = mask_padding(batch)
        wm = self.wm.loss(batch, state, weight)
        if self.probe is not None:
            loss_probe, probe_metrics = self.probe(wm.features[:, :, 0], batch[MAP_FIELD], weight)
        else:
            loss_probe, probe_metrics = torch.zeros((), device=wm.loss.device), {}
        return wm, loss_probe, probe_metrics

    def behavior_losses(self, start: RSSMState, start_weight: Tensor | None = None
                        ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """(actor loss, critic loss, metrics) imagining from `start` [N, ...] (one compilable graph);
        `start_weight` [N] (0 for states of padding rows) weights each rollout."""
        imagined = imagine(self.wm.rssm, self.actor, start, self.config.imag_horizon, self.actor_grad == "dynamics")
        return actor_critic_losses(imagined, self.actor, self.critic, self.critic_target, self.wm.reward,
                                   self.wm.terminal, self.config, self.actor_grad, start_weight)

    def compile(self, **options: Any) -> None:
        """torch.compile the two graphs of `losses` (the world model's and the behaviour's) in place."""
        self._model_fn = torch.compile(self.model_losses, **options)
        self._behavior_fn = torch.compile(self.behavior_losses, **options)

    def losses(self, batch: dict[str, Tensor], state: RSSMState
               ) -> tuple[dict[str, Tensor], dict[str, Tensor], RSSMState]:
        """(losses by optimiser, metrics, state after the batch); their sum can be backpropagated at once.

        Imagination runs with the world model's parameters frozen (as PyDreamer does): dynamics-backprop
        gradients flow through its activations to the actor but never into its weights.
        """
        model_fn = getattr(self, "_model_fn", self.model_losses)
        behavior_fn = getattr(self, "_behavior_fn", self.behavior_losses)
        wm, loss_probe, probe_metrics = model_fn(batch, state)
        # Imagine from every posterior state (all T x B x I of them), detached from the world-model loss;
        # rollouts from padding rows weigh 0 (kept rather than dropped: static shapes compile).
        start = RSSMState(*(s.detach().flatten(0, 2) for s in wm.states))
        start_weight = None
        if wm.weight is not None:
            start_weight = wm.weight.unsqueeze(-1).expand(*wm.states.deter.shape[:3]).flatten()
        with frozen(self.wm):
            loss_actor, loss_critic, ac_metrics = behavior_fn(start, start_weight)
        losses = {"model": wm.loss, "actor": loss_actor, "critic": loss_critic, "probe": loss_probe}
        assert tuple(losses) == LOSS_KEYS
        metrics = {**wm.metrics, **ac_metrics, **probe_metrics}
        last = RSSMState(*(s.detach() for s in wm.last))
        return losses, metrics, last

    def initial_policy_state(self, batch_size: int, device: torch.device | str | None = None) -> PolicyState:
        """Acting state of `batch_size` freshly reset environments."""
        return initial_policy_state(self.wm.rssm, self.wm.codec.size, batch_size, device)

    @torch.no_grad()
    def policy(self, obs: dict[str, Tensor], state: PolicyState | None = None,
               greedy: bool = False) -> tuple[Tensor, PolicyState]:
        """Act for B envs: obs field -> [B, *shape] (+ optional bool `is_first` [B]); returns (actions, state)."""
        if state is None:
            some = next(iter(obs.values()))
            state = self.initial_policy_state(some.shape[0], some.device)
        return policy_step(self.wm.encoder, self.wm.rssm, self.actor, self.wm.codec, obs, state, greedy)
