"""One acting step for B environments: observe the new observation, then sample (or take the mode of) the actor.

Shared by `Agent.policy` (trainer side) and the snapshot actor that collectors load, so both act identically.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from dreamstream.datasets.spec import EpisodeSpec
from dreamstream.train.model.actions import ActionCodec
from dreamstream.train.model.actor_critic import Actor
from dreamstream.train.model.config import ModelConfig
from dreamstream.train.model.encoders import MultiEncoder, split_fields
from dreamstream.train.model.rssm import RSSM, RSSMState


class PolicyState(NamedTuple):
    """Per-env acting state: the RSSM state and the previous action as the model saw it ([B, size])."""

    deter: Tensor
    stoch: Tensor
    action: Tensor


def initial_policy_state(rssm: RSSM, action_size: int, batch_size: int,
                         device: torch.device | str | None = None) -> PolicyState:
    """The state of freshly reset envs (zeros, as on an `is_first` row)."""
    state = rssm.initial(batch_size, device)
    return PolicyState(state.deter, state.stoch, torch.zeros(batch_size, action_size, device=device))


def policy_step(encoder: MultiEncoder, rssm: RSSM, actor: Actor, codec: ActionCodec, obs: dict[str, Tensor],
                state: PolicyState, greedy: bool = False) -> tuple[Tensor, PolicyState]:
    """obs: field -> [B, *shape] (plus optional bool `is_first` [B], which resets those envs first).

    Returns (env actions: int64 [B] or float32 [B, *shape], next state).
    """
    deter, stoch, prev = state
    if "is_first" in obs:
        keep = (~obs["is_first"].to(torch.bool)).unsqueeze(-1).float()
        deter, stoch, prev = deter * keep, stoch * keep, prev * keep
    embed = encoder({name: obs[name] for name in encoder.encoders})
    post_state, _ = rssm.obs_step(RSSMState(deter, stoch), prev, embed)
    raw = actor.act(rssm.features(post_state), greedy=greedy)
    vec = actor.dist.squash(raw).detach()
    return codec.decode(vec), PolicyState(post_state.deter, post_state.stoch, vec)


class ActingModel(nn.Module):
    """Encoder + RSSM + actor: all that acting needs (no decoders, critic or optimiser state)."""

    def __init__(self, spec: EpisodeSpec, config: ModelConfig) -> None:
        super().__init__()
        fields, _ = split_fields(spec, config.map_probe)
        self.codec = ActionCodec(spec.action)
        self.encoder = MultiEncoder(fields, config)
        self.rssm = RSSM(config, self.encoder.out_dim, self.codec.size)
        self.actor = Actor(config, self.codec)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> PolicyState:
        return initial_policy_state(self.rssm, self.codec.size, batch_size, device)

    @torch.no_grad()
    def forward(self, obs: dict[str, Tensor], state: PolicyState, greedy: bool = False) -> tuple[Tensor, PolicyState]:
        return policy_step(self.encoder, self.rssm, self.actor, self.codec, obs, state, greedy)
