"""The recurrent state-space model (DreamerV2/PyDreamer): a GRU state h and stochastic latents z.

    h_t = GRU(h_{t-1}, ELU(LN(W z_{t-1} + U a_t)))       a_t = the action that led to row t
    prior  p(z_t | h_t)        = MLP(h_t)
    posterior q(z_t | h_t, e_t) = MLP(W h_t + U e_t)      e_t = the observation embedding

`observe` runs the posterior over a [T, B] batch, zeroing the incoming state on rows where `reset` is
true, and returns the last state so that truncated backprop through time carries it into the next batch.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from dreamstream.train.model.config import ModelConfig
from dreamstream.train.model.distributions import make_latent
from dreamstream.train.model.networks import make_gru


class RSSMState(NamedTuple):
    """The model state of a batch of sequences: deter [*B, deter], stoch (flat) [*B, stoch_size], float32."""

    deter: Tensor
    stoch: Tensor


class Observed(NamedTuple):
    """Everything `observe` produces, time-major [T, B, ...]."""

    deter: Tensor
    stoch: Tensor
    post: Tensor
    prior: Tensor
    last: RSSMState


def _norm(size: int, on: bool) -> nn.Module:
    return nn.LayerNorm(size, eps=1e-3) if on else nn.Identity()


class RSSM(nn.Module):
    """Prior, posterior and deterministic transition; `latent` does the latent distribution's maths."""

    def __init__(self, config: ModelConfig, embed_dim: int, action_dim: int) -> None:
        super().__init__()
        self.deter_size, self.stoch_size = config.deter, config.stoch_size
        self.latent = make_latent(config.stoch, config.classes)
        hidden, params = config.hidden, self.latent.params_size
        self.in_stoch = nn.Linear(self.stoch_size, hidden)
        self.in_action = nn.Linear(action_dim, hidden, bias=False)
        self.in_norm = _norm(hidden, config.layer_norm)
        self.gru = make_gru(config.gru, hidden, config.deter)
        self.prior_net = nn.Sequential(nn.Linear(config.deter, hidden), _norm(hidden, config.layer_norm), nn.ELU(),
                                       nn.Linear(hidden, params))
        self.post_deter = nn.Linear(config.deter, hidden)
        self.post_embed = nn.Linear(embed_dim, hidden, bias=False)
        self.post_net = nn.Sequential(_norm(hidden, config.layer_norm), nn.ELU(), nn.Linear(hidden, params))

    def initial(self, batch_size: int, device: torch.device | str | None = None) -> RSSMState:
        """The zero state (what `reset` starts from)."""
        return RSSMState(torch.zeros(batch_size, self.deter_size, device=device),
                         torch.zeros(batch_size, self.stoch_size, device=device))

    @staticmethod
    def features(state: RSSMState) -> Tensor:
        """[h, z]: what every head reads."""
        return torch.cat([state.deter, state.stoch], -1)

    def _deter(self, state: RSSMState, action_in: Tensor) -> Tensor:
        """h' = GRU(h, ELU(LN(W z + U a))); `action_in` is U a (projected once per sequence in `observe`)."""
        x = torch.nn.functional.elu(self.in_norm(self.in_stoch(state.stoch) + action_in))
        return self.gru(x, state.deter).float()

    def _post_step(self, state: RSSMState, action_in: Tensor, embed_in: Tensor,
                   sample: bool) -> tuple[RSSMState, Tensor]:
        deter = self._deter(state, action_in)
        post = self.post_net(self.post_deter(deter) + embed_in).float()
        return RSSMState(deter, self.latent.sample(post, sample)), post

    def prior(self, deter: Tensor) -> Tensor:
        """Prior parameters p(z | h) for any leading shape."""
        return self.prior_net(deter).float()

    def img_step(self, state: RSSMState, action: Tensor, sample: bool = True) -> tuple[RSSMState, Tensor]:
        """One imagined step: (next state with z from the prior, prior parameters)."""
        deter = self._deter(state, self.in_action(action))
        prior = self.prior(deter)
        return RSSMState(deter, self.latent.sample(prior, sample)), prior

    def obs_step(self, state: RSSMState, action: Tensor, embed: Tensor,
                 sample: bool = True) -> tuple[RSSMState, Tensor]:
        """One observed step: (next state with z from the posterior, posterior parameters)."""
        return self._post_step(state, self.in_action(action), self.post_embed(embed), sample)

    def observe(self, embed: Tensor, action: Tensor, reset: Tensor, state: RSSMState,
                sample: bool = True) -> Observed:
        """Posterior over a sequence. embed [T, B, E], action [T, B, A] (model vectors), reset bool [T, B]."""
        steps, batch = reset.shape
        assert embed.shape[:2] == (steps, batch) and action.shape[:2] == (steps, batch), (embed.shape, action.shape)
        assert state.deter.shape == (batch, self.deter_size), (state.deter.shape, batch)
        keep = (~reset).unsqueeze(-1).float()
        # The input projections do not depend on the state: one matmul for the whole sequence.
        action_in, embed_in = self.in_action(action), self.post_embed(embed)
        deters, stochs, posts = [], [], []
        for t in range(steps):
            state = RSSMState(state.deter * keep[t], state.stoch * keep[t])
            state, post = self._post_step(state, action_in[t], embed_in[t], sample)
            deters.append(state.deter)
            stochs.append(state.stoch)
            posts.append(post)
        deter = torch.stack(deters)
        # The prior only reads h, so it runs once over the whole sequence (PyDreamer's batching trick).
        return Observed(deter, torch.stack(stochs), torch.stack(posts), self.prior(deter), state)
