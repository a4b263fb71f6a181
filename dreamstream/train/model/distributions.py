"""The distributions the agent samples from: RSSM latents and actor outputs.

Small stateless classes over raw network outputs instead of torch.distributions objects: they cost no
validation, hold no tensors between calls and trace cleanly under torch.compile. Sampling that trains
through the sample is reparameterised (Gaussians) or straight-through (one-hot).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from dreamstream.train.model.functional import categorical_entropy, categorical_kl, straight_through_onehot

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


class CategoricalLatent:
    """`stoch` independent categoricals of `classes` classes each; params are logits [..., stoch*classes]."""

    def __init__(self, stoch: int, classes: int) -> None:
        self.stoch, self.classes = stoch, classes
        self.params_size = stoch * classes
        self.sample_size = stoch * classes

    def _logits(self, params: Tensor) -> Tensor:
        return params.float().unflatten(-1, (self.stoch, self.classes))

    def sample(self, params: Tensor, sample: bool = True) -> Tensor:
        """Flat one-hot sample (or mode) with straight-through gradients."""
        return straight_through_onehot(self._logits(params), sample).flatten(-2)

    def kl(self, post: Tensor, prior: Tensor) -> Tensor:
        return categorical_kl(self._logits(post), self._logits(prior)).sum(-1)

    def entropy(self, params: Tensor) -> Tensor:
        return categorical_entropy(self._logits(params)).sum(-1)

    def log_prob(self, params: Tensor, z: Tensor) -> Tensor:
        logp = torch.log_softmax(self._logits(params), -1)
        return (logp * z.float().unflatten(-1, (self.stoch, self.classes))).sum((-1, -2))


class GaussianLatent:
    """Diagonal Gaussian latents; params are [mean, raw std] of size 2*stoch (std in [0.1, 2.1])."""

    def __init__(self, stoch: int) -> None:
        self.stoch = stoch
        self.params_size = 2 * stoch
        self.sample_size = stoch

    def _mean_std(self, params: Tensor) -> tuple[Tensor, Tensor]:
        mean, raw = params.float().chunk(2, -1)
        return mean, 2.0 * torch.sigmoid(raw) + 0.1

    def sample(self, params: Tensor, sample: bool = True) -> Tensor:
        mean, std = self._mean_std(params)
        return mean + std * torch.randn_like(std) if sample else mean

    def kl(self, post: Tensor, prior: Tensor) -> Tensor:
        m1, s1 = self._mean_std(post)
        m2, s2 = self._mean_std(prior)
        return (torch.log(s2 / s1) + (s1.square() + (m1 - m2).square()) / (2.0 * s2.square()) - 0.5).sum(-1)

    def entropy(self, params: Tensor) -> Tensor:
        _, std = self._mean_std(params)
        return (0.5 + _LOG_SQRT_2PI + torch.log(std)).sum(-1)

    def log_prob(self, params: Tensor, z: Tensor) -> Tensor:
        mean, std = self._mean_std(params)
        return (-0.5 * ((z.float() - mean) / std).square() - torch.log(std) - _LOG_SQRT_2PI).sum(-1)


def make_latent(stoch: int, classes: int) -> CategoricalLatent | GaussianLatent:
    """Categorical latents when `classes` > 0, else Gaussian."""
    return CategoricalLatent(stoch, classes) if classes else GaussianLatent(stoch)


class OneHotActions:
    """Discrete actions: params are logits [..., n]; raw sample = one-hot (straight-through when reparam)."""

    def __init__(self, n: int) -> None:
        self.size = n
        self.params_size = n

    def sample(self, params: Tensor, reparam: bool) -> Tensor:
        onehot = straight_through_onehot(params, sample=True)
        return onehot if reparam else onehot.detach()

    def mode(self, params: Tensor) -> Tensor:
        return straight_through_onehot(params, sample=False).detach()

    def squash(self, raw: Tensor) -> Tensor:
        """What the RSSM sees: the one-hot itself."""
        return raw

    def log_prob(self, params: Tensor, raw: Tensor) -> Tensor:
        return (torch.log_softmax(params.float(), -1) * raw).sum(-1)

    def entropy(self, params: Tensor) -> Tensor:
        return categorical_entropy(params)


class TanhNormalActions:
    """tanh(Normal): params [mean, raw std] of 2*size; raw sample = pre-tanh u, the action is tanh(u) in [-1, 1].

    Mean 5 tanh(m / 5) and std softplus(s) + 0.1 as in PyDreamer; the entropy is the base Normal's (as in
    PyDreamer), which keeps the bonus well defined without sampling.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.params_size = 2 * size

    def _mean_std(self, params: Tensor) -> tuple[Tensor, Tensor]:
        mean, raw = params.float().chunk(2, -1)
        return 5.0 * torch.tanh(mean / 5.0), F.softplus(raw) + 0.1

    def sample(self, params: Tensor, reparam: bool) -> Tensor:
        mean, std = self._mean_std(params)
        u = mean + std * torch.randn_like(std)
        return u if reparam else u.detach()

    def mode(self, params: Tensor) -> Tensor:
        return self._mean_std(params)[0].detach()

    def squash(self, raw: Tensor) -> Tensor:
        return torch.tanh(raw)

    def log_prob(self, params: Tensor, raw: Tensor) -> Tensor:
        mean, std = self._mean_std(params)
        normal = -0.5 * ((raw - mean) / std).square() - torch.log(std) - _LOG_SQRT_2PI
        # log |d tanh(u) / du| = log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), stable for large |u|.
        log_det = 2.0 * (math.log(2.0) - raw - F.softplus(-2.0 * raw))
        return (normal - log_det).sum(-1)

    def entropy(self, params: Tensor) -> Tensor:
        _, std = self._mean_std(params)
        return (0.5 + _LOG_SQRT_2PI + torch.log(std)).sum(-1)


def _normal_cdf(x: Tensor) -> Tensor:
    return 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


def _normal_pdf(x: Tensor) -> Tensor:
    return torch.exp(-0.5 * x.square() - _LOG_SQRT_2PI)


class TruncNormalActions:
    """Normal truncated to [-1, 1] (DreamerV2's continuous actor): mean tanh(m), std 2 sigmoid(s / 2) + 0.1.

    Sampled by the inverse CDF, so the sample is reparameterised; log-prob and entropy are exact.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.params_size = 2 * size

    def _parts(self, params: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        mean, raw = params.float().chunk(2, -1)
        mean = torch.tanh(mean)
        std = 2.0 * torch.sigmoid(raw / 2.0) + 0.1
        alpha, beta = (-1.0 - mean) / std, (1.0 - mean) / std
        z = (_normal_cdf(beta) - _normal_cdf(alpha)).clamp_min(1e-6)
        return mean, std, alpha, beta, z

    def sample(self, params: Tensor, reparam: bool) -> Tensor:
        mean, std, alpha, _, z = self._parts(params)
        p = (_normal_cdf(alpha) + torch.rand_like(mean) * z).clamp(1e-6, 1.0 - 1e-6)
        x = (mean + std * math.sqrt(2.0) * torch.erfinv(2.0 * p - 1.0)).clamp(-1.0, 1.0)
        return x if reparam else x.detach()

    def mode(self, params: Tensor) -> Tensor:
        return self._parts(params)[0].detach()

    def squash(self, raw: Tensor) -> Tensor:
        return raw

    def log_prob(self, params: Tensor, raw: Tensor) -> Tensor:
        mean, std, _, _, z = self._parts(params)
        xi = (raw - mean) / std
        return (-0.5 * xi.square() - _LOG_SQRT_2PI - torch.log(std) - torch.log(z)).sum(-1)

    def entropy(self, params: Tensor) -> Tensor:
        _, std, alpha, beta, z = self._parts(params)
        tails = (alpha * _normal_pdf(alpha) - beta * _normal_pdf(beta)) / (2 * z)
        ent = 0.5 + _LOG_SQRT_2PI + torch.log(std * z) + tails
        return ent.sum(-1)


ActionDist = OneHotActions | TanhNormalActions | TruncNormalActions
