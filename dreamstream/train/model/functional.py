"""Parameter-free maths of the agent: returns, KL balancing, IWAE, reward encodings, straight-through sampling.

Everything here is a pure function of tensors (no `.item()`, no branching on values) so that the training
step compiles, and each is unit-tested on tiny tensors in tests/train/test_functional.py.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def symlog(x: Tensor) -> Tensor:
    """sign(x) log(1 + |x|): compresses large magnitudes (DreamerV3)."""
    return torch.sign(x) * torch.log1p(torch.abs(x))


def symexp(x: Tensor) -> Tensor:
    """Inverse of symlog."""
    return torch.sign(x) * torch.expm1(torch.abs(x))


def twohot(x: Tensor, bins: Tensor) -> Tensor:
    """Encode values as weights on their two nearest bins (weights sum to 1, their mean is x).

    x: [...]; bins: [K] ascending. Values outside the bins go entirely to the nearest end bin.
    """
    k = bins.shape[0]
    x = x.clamp(bins[0], bins[-1])
    above = torch.searchsorted(bins, x.detach().contiguous(), right=True).clamp(1, k - 1)
    below = above - 1
    lo, hi = bins[below], bins[above]
    w_hi = ((x - lo) / (hi - lo)).clamp(0.0, 1.0)
    out = F.one_hot(below, k) * (1.0 - w_hi).unsqueeze(-1) + F.one_hot(above, k) * w_hi.unsqueeze(-1)
    return out


def nearest_onehot(x: Tensor, support: Tensor) -> Tensor:
    """PyDreamer's categorical reward target: all weight on the support value nearest to x."""
    index = torch.square(x.unsqueeze(-1) - support).argmin(-1)
    return F.one_hot(index, support.shape[0]).to(x.dtype)


def straight_through_onehot(logits: Tensor, sample: bool = True) -> Tensor:
    """One-hot sample (Gumbel-max) or mode of a categorical, with the gradient of its probabilities.

    The forward value is exactly one-hot; the backward pass sees `probs` (straight-through estimator).
    """
    logits = logits.float()
    probs = torch.softmax(logits, -1)
    if sample:
        uniform = torch.rand_like(logits).clamp(1e-6, 1.0 - 1e-6)
        index = torch.argmax(logits - torch.log(-torch.log(uniform)), -1)
    else:
        index = torch.argmax(logits, -1)
    onehot = F.one_hot(index, logits.shape[-1]).to(probs.dtype)
    return onehot + (probs - probs.detach())  # exactly one-hot forward: x - x is 0


def categorical_kl(logits_p: Tensor, logits_q: Tensor) -> Tensor:
    """KL(p || q) of categoricals along the last axis."""
    logp = torch.log_softmax(logits_p.float(), -1)
    logq = torch.log_softmax(logits_q.float(), -1)
    return (logp.exp() * (logp - logq)).sum(-1)


def categorical_entropy(logits: Tensor) -> Tensor:
    """Entropy along the last axis."""
    logp = torch.log_softmax(logits.float(), -1)
    return -(logp.exp() * logp).sum(-1)


def kl_balanced(kl_fn, post: Tensor, prior: Tensor, balance: float) -> tuple[Tensor, Tensor]:
    """DreamerV2's KL balancing: value KL(post || prior), gradients split `balance` to the prior.

    loss = balance * KL(sg(post) || prior) + (1 - balance) * KL(post || sg(prior)).
    Returns (balanced loss, exact KL), both with the batch shape of `kl_fn`'s output.
    """
    to_prior = kl_fn(post.detach(), prior)
    to_post = kl_fn(post, prior.detach())
    exact = to_post.detach()
    return balance * to_prior + (1.0 - balance) * to_post, exact


def logavgexp(x: Tensor, dim: int) -> Tensor:
    """log(mean(exp(x))) along `dim`, computed stably."""
    return torch.logsumexp(x, dim) - math.log(x.shape[dim])


def iwae_loss(loss_samples: Tensor, dim: int) -> Tensor:
    """Importance-weighted bound from per-sample negative ELBOs: -log mean_i exp(-loss_i).

    With one sample this is that sample's ELBO loss; with more it is a tighter bound (<= their mean).
    """
    return -logavgexp(-loss_samples, dim)


def lambda_return(reward: Tensor, value: Tensor, cont: Tensor, gamma: float, lam: float) -> Tensor:
    """TD(lambda) targets G_t = r_{t+1} + gamma c_{t+1} ((1 - lam) v_{t+1} + lam G_{t+1}), G_H = v_H.

    reward, cont: [H, ...] for the transitions t -> t+1 (r_{t+1}, continuation c_{t+1});
    value: [H+1, ...] = v_0 .. v_H. Returns [H, ...] targets for states 0 .. H-1.
    """
    horizon = reward.shape[0]
    assert value.shape[0] == horizon + 1 and cont.shape == reward.shape, (reward.shape, value.shape, cont.shape)
    out = []
    last = value[-1]
    for t in reversed(range(horizon)):
        last = reward[t] + gamma * cont[t] * ((1.0 - lam) * value[t + 1] + lam * last)
        out.append(last)
    return torch.stack(out[::-1])


def discount_weights(cont: Tensor) -> Tensor:
    """Weight of each imagined state: the probability that no episode end came before or at it.

    cont: [H, ...] continuation probabilities of states 0 .. H-1 (state 0 included, as in PyDreamer: an
    imagined rollout from a terminal start state carries no weight). Returns cumprod along time.
    """
    return torch.cumprod(cont, 0)


def masked_mean(x: Tensor, weight: Tensor | None) -> Tensor:
    """Mean of x over the elements where `weight` (0/1, broadcastable to x) is 1; the plain mean without one.

    An all-zero weight gives 0 (not NaN), so a batch of padding only trains nothing.
    """
    if weight is None:
        return x.mean()
    weight = weight.to(x.dtype).expand_as(x)
    return (x * weight).sum() / weight.sum().clamp(min=1.0)
