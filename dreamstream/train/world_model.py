"""The world model: encoders, RSSM, decoders, reward and termination heads, and its loss.

Loss per step and posterior sample i: kl_weight * KL_balanced + sum of weighted reconstruction NLLs
(every input field, reward, termination). With `iwae_samples` = I > 1 the I samples of each step are
combined into the importance-weighted bound -log mean_i exp(-loss_i) with the sampled KL log q(z) - log p(z)
(PyDreamer's IWAE option); with I = 1 it is the usual ELBO with the analytic KL.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from dreamstream.datasets.spec import EpisodeSpec
from dreamstream.train.actions import ActionCodec
from dreamstream.train.config import ModelConfig
from dreamstream.train.decoders import loss_weight, make_decoder
from dreamstream.train.encoders import MultiEncoder, split_fields
from dreamstream.train.functional import iwae_loss, kl_balanced
from dreamstream.train.heads import RewardHead, TerminalHead
from dreamstream.train.rssm import RSSM, Observed, RSSMState


class WorldModelOutput(NamedTuple):
    """What the rest of the step needs from the world model."""

    loss: Tensor  # scalar
    features: Tensor  # [T, B, I, F], with gradients (callers detach)
    states: RSSMState  # [T, B, I, ...] posterior states, for imagination
    last: RSSMState  # [B, ...] state after the last row (sample 0), for the next batch
    metrics: dict[str, Tensor]


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
        """The world-model loss of a batch and everything derived from its posterior."""
        cfg = self.config
        samples = cfg.iwae_samples
        steps, batch_size = batch["reset"].shape
        seq = self.observe(batch, state, samples)

        def split(x: Tensor) -> Tensor:  # [T, B*I, ...] -> [T, B, I, ...]
            return x.reshape(steps, batch_size, samples, *x.shape[2:])

        states = RSSMState(split(seq.deter), split(seq.stoch))
        post, prior = split(seq.post), split(seq.prior)
        features = self.rssm.features(states)  # [T, B, I, F]

        metrics: dict[str, Tensor] = {}
        recon = torch.zeros(steps, batch_size, samples, device=features.device)
        for name, decoder in self.decoders.items():
            loss = decoder.loss(features, expand_samples(batch[name], samples))
            assert loss.shape == recon.shape, (name, loss.shape)
            recon = recon + self.weights[name] * loss
            metrics[f"loss/{name}"] = loss.detach().mean()
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
        loss = iwae_loss(recon + cfg.kl_weight * kl, dim=2).mean()

        with torch.no_grad():
            metrics.update({
                "loss/model": loss.detach(),
                "loss/reward": loss_reward.mean(),
                "loss/terminal": loss_terminal.mean(),
                "loss/kl": kl_exact.mean(),
                "entropy/prior": latent.entropy(prior).mean(),
                "entropy/post": latent.entropy(post).mean(),
            })
        return WorldModelOutput(loss, features, states, seq.last, metrics)

    @torch.no_grad()
    def dream(self, batch: dict[str, Tensor], state: RSSMState, context: int) -> dict[str, Tensor]:
        """Open-loop predictions for videos: reconstructions of the first `context` rows, then the prior rolled
        forward under the batch's own actions. Returns field -> [T, B, ...] in the data's dtypes, plus
        `reward` and `cont` (continuation probability) predictions [T, B]."""
        steps = batch["reset"].shape[0]
        assert 0 < context <= steps, (context, steps)
        seq = self.observe({k: v[:context] for k, v in batch.items()}, state, sample=False)
        deters, stochs = [seq.deter], [seq.stoch]
        action = self.codec.encode(batch["action"], batch["is_first"])
        current = seq.last
        for t in range(context, steps):
            current, _ = self.rssm.img_step(current, action[t], sample=False)
            deters.append(current.deter[None])
            stochs.append(current.stoch[None])
        features = self.rssm.features(RSSMState(torch.cat(deters), torch.cat(stochs)))
        out = {name: decoder.decode(features) for name, decoder in self.decoders.items()}
        out["reward"] = self.reward.mean(features)
        out["cont"] = self.terminal.cont(features)
        return out

