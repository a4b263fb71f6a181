"""The world model: encoders, RSSM, decoders, reward and termination heads, and its loss.

Loss per step and posterior sample i: kl_weight * KL_balanced + sum of weighted reconstruction NLLs
(every input field, reward, termination). With `iwae_samples` = I > 1 the I samples of each step are
combined into the importance-weighted bound -log mean_i exp(-loss_i) with the sampled KL log q(z) - log p(z)
(PyDreamer's IWAE option); with I = 1 it is the usual ELBO with the analytic KL.

Padding rows of a loader batch (`valid` False) weigh 0 in the loss and in every metric (batch.mask_padding).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from dreamstream.datasets.spec import EpisodeSpec
from dreamstream.train.model.actions import ActionCodec
from dreamstream.train.model.batch import mask_padding
from dreamstream.train.model.config import ModelConfig
from dreamstream.train.model.decoders import loss_weight, make_decoder
from dreamstream.train.model.encoders import MultiEncoder, split_fields
from dreamstream.train.model.functional import iwae_loss, kl_balanced, masked_mean
from dreamstream.train.model.heads import RewardHead, TerminalHead
from dreamstream.train.model.rssm import RSSM, Observed, RSSMState


class WorldModelOutput(NamedTuple):
    """What the rest of the step needs from the world model."""

    loss: Tensor  # scalar
    features: Tensor  # [T, B, I, F], with gradients (callers detach)
    states: RSSMState  # [T, B, I, ...] posterior states, for imagination
    last: RSSMState  # [B, ...] state after the last row (sample 0), for the next batch
    metrics: dict[str, Tensor]
    weight: Tensor | None  # [T, B] 1 on real rows, 0 on padding (None: the batch had no `valid`)


def expand_samples(x: Tensor, samples: int) -> Tensor:
    """[T, B, ...] -> [T, B, I, ...] without copying."""
    return x.unsqueeze(2).expand(x.shape[0], x.shape[1], samples, *x.shape[2:])


class WorldModel(nn.Module):
    """Everything trained by the model loss; its parameters form the world-model optimiser's group."""

    def __init__(self, spec: EpisodeSpec, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.input_fields, _ = split_fields(spec, config.map_probe)
        self.codec = ActionCodec(spec.action)
        self.encoder = MultiEncoder(self.input_fields, config)
        self.rssm = RSSM(config, self.encoder.out_dim, self.codec.size)
        self.decoders = nn.ModuleDict({name: make_decoder(f, config) for name, f in self.input_fields.items()})
        self.weights = {name: loss_weight(f, config) for name, f in self.input_fields.items()}
        self.reward = RewardHead(config)
        self.terminal = TerminalHead(config)

    def observe(self, batch: dict[str, Tensor], state: RSSMState, samples: int = 1,
                sample: bool = True) -> Observed:
        """Posterior over a batch; each of the B rows runs `samples` independent posterior samples.

        Returns tensors [T, B * samples, ...] (row b's samples are adjacent) and the last state of sample 0.
        """
        obs = {name: batch[name] for name in self.input_fields}
        embed = self.encoder(obs)  # [T, B, E]
        action = self.codec.encode(batch["action"], batch["is_first"])
        reset = batch["reset"]
        if samples > 1:
            embed, action, reset = (x.repeat_interleave(samples, 1) for x in (embed, action, reset))
            state = RSSMState(*(s.repeat_interleave(samples, 0) for s in state))
        out = self.rssm.observe(embed, action, reset, state, sample)
        if samples > 1:
            out = out._replace(last=RSSMState(*(s[::samples] for s in out.last)))
        return out

    def forward(self, batch: dict[str, Tensor], state: RSSMState) -> WorldModelOutput:
        """The world-model loss of a batch (padding rows weigh 0) and everything derived from its posterior."""
        batch, weight = mask_padding(batch)
        return self.loss(batch, state, weight)

    def loss(self, batch: dict[str, Tensor], state: RSSMState, weight: Tensor | None) -> WorldModelOutput:
        """`forward` on a batch that went through mask_padding already (weight [T, B] or None)."""
        cfg = self.config
        samples = cfg.iwae_samples
        steps, batch_size = batch["reset"].shape
        seq = self.observe(batch, state, samples)

        def split(x: Tensor) -> Tensor:  # [T, B*I, ...] -> [T, B, I, ...]
            return x.reshape(steps, batch_size, samples, *x.shape[2:])

        def mean(x: Tensor) -> Tensor:  # [T, B] or [T, B, I] -> scalar over real rows
            return masked_mean(x, None if weight is None else weight.reshape(*weight.shape, *[1] * (x.dim() - 2)))

        states = RSSMState(split(seq.deter), split(seq.stoch))
        post, prior = split(seq.post), split(seq.prior)
        features = self.rssm.features(states)  # [T, B, I, F]

        metrics: dict[str, Tensor] = {}
        recon = torch.zeros(steps, batch_size, samples, device=features.device)
        for name, decoder in self.decoders.items():
            loss = decoder.loss(features, expand_samples(batch[name], samples))
            assert loss.shape == recon.shape, (name, loss.shape)
            recon = recon + self.weights[name] * loss
            metrics[f"loss/{name}"] = mean(loss.detach())
        loss_reward = self.reward.loss(features, expand_samples(batch["reward"], samples))
        loss_terminal = self.terminal.loss(features, expand_samples(batch["is_terminal"], samples))
        recon = recon + cfg.reward_weight * loss_reward + cfg.terminal_weight * loss_terminal

        latent = self.rssm.latent
        if samples == 1:
            kl, kl_exact = kl_balanced(latent.kl, post, prior, cfg.kl_balance)
        else:
            z = states.stoch
            logq, logp = latent.log_prob(post, z), latent.log_prob(prior, z)
            kl = cfg.kl_balance * (logq.detach() - logp) + (1 - cfg.kl_balance) * (logq - logp.detach())
            kl_exact = latent.kl(post, prior).detach()
        assert kl.shape == recon.shape, (kl.shape, recon.shape)
        loss = mean(iwae_loss(recon + cfg.kl_weight * kl, dim=2))

        with torch.no_grad():
            metrics.update({
                "loss/model": loss.detach(),
                "loss/reward": mean(loss_reward),
                "loss/terminal": mean(loss_terminal),
                "loss/kl": mean(kl_exact),
                "entropy/prior": mean(latent.entropy(prior)),
                "entropy/post": mean(latent.entropy(post)),
            })
        last = seq.last
        if weight is not None:  # a row that ends in padding hands the next batch a fresh state
            keep = weight[-1].unsqueeze(-1)
            last = RSSMState(last.deter * keep, last.stoch * keep)
        return WorldModelOutput(loss, features, states, last, metrics, weight)

    @torch.no_grad()
    def dream_features(self, batch: dict[str, Tensor], state: RSSMState, context: int) -> tuple[Tensor, Tensor]:
        """(posterior features, open-loop features), both [T, B, F], from one pass: the posterior over every row
        (latent modes), and the same for the first `context` rows, then the prior rolled forward under the
        batch's own actions (from a zero state where `reset` is set, as `observe` does)."""
        batch, _ = mask_padding(batch)
        steps = batch["reset"].shape[0]
        assert 0 < context <= steps, (context, steps)
        seq = self.observe(batch, state, sample=False)
        posterior = self.rssm.features(RSSMState(seq.deter, seq.stoch))
        action = self.codec.encode(batch["action"], batch["is_first"])
        keep = (~batch["reset"]).unsqueeze(-1).float()
        current = RSSMState(seq.deter[context - 1], seq.stoch[context - 1])
        imagined = []
        for t in range(context, steps):
            current = RSSMState(current.deter * keep[t], current.stoch * keep[t])
            current, _ = self.rssm.img_step(current, action[t], sample=False)
            imagined.append(self.rssm.features(current))
        return posterior, torch.cat([posterior[:context], *(f[None] for f in imagined)])

    @torch.no_grad()
    def dream(self, batch: dict[str, Tensor], state: RSSMState, context: int) -> dict[str, Tensor]:
        """Open-loop predictions for videos: reconstructions of the first `context` rows, then the prior rolled
        forward under the batch's own actions (see `dream_features`). Returns field -> [T, B, ...] in the data's
        dtypes, plus `reward` and `cont` (continuation probability) predictions [T, B]."""
        _, features = self.dream_features(batch, state, context)
        out = {name: decoder.decode(features) for name, decoder in self.decoders.items()}
        out["reward"] = self.reward.mean(features)
        out["cont"] = self.terminal.cont(features)
        return out
