"""Latent and action distributions against torch.distributions and numerical integration; the action codec."""

from __future__ import annotations

import torch
import torch.distributions as D

from dreamstream.datasets.spec import ActionSpec
from dreamstream.train.model.actions import ActionCodec
from dreamstream.train.model.distributions import (
    CategoricalLatent,
    GaussianLatent,
    OneHotActions,
    TanhNormalActions,
    TruncNormalActions,
)


def test_categorical_latent_matches_torch() -> None:
    latent = CategoricalLatent(stoch=3, classes=4)
    post, prior = torch.randn(2, 12), torch.randn(2, 12)
    dp = D.Independent(D.OneHotCategorical(logits=post.view(2, 3, 4)), 1)
    dq = D.Independent(D.OneHotCategorical(logits=prior.view(2, 3, 4)), 1)
    torch.testing.assert_close(latent.kl(post, prior), D.kl_divergence(dp, dq))
    torch.testing.assert_close(latent.entropy(post), dp.entropy())
    z = latent.sample(post)
    assert z.shape == (2, 12)
    torch.testing.assert_close(latent.log_prob(post, z), dp.log_prob(z.view(2, 3, 4)))


def test_gaussian_latent_matches_torch() -> None:
    latent = GaussianLatent(stoch=3)
    post, prior = torch.randn(2, 6), torch.randn(2, 6)

    def dist(p: torch.Tensor) -> D.Distribution:
        mean, raw = p.chunk(2, -1)
        return D.Independent(D.Normal(mean, 2 * torch.sigmoid(raw) + 0.1), 1)

    torch.testing.assert_close(latent.kl(post, prior), D.kl_divergence(dist(post), dist(prior)))
    torch.testing.assert_close(latent.entropy(post), dist(post).entropy())
    z = latent.sample(post)
    torch.testing.assert_close(latent.log_prob(post, z), dist(post).log_prob(z))


def test_tanh_normal_log_prob_matches_torch() -> None:
    dist = TanhNormalActions(size=2)
    params = torch.randn(5, 4)
    u = dist.sample(params, reparam=False)
    mean, raw = params.chunk(2, -1)
    ref = D.TransformedDistribution(D.Normal(5 * torch.tanh(mean / 5), torch.nn.functional.softplus(raw) + 0.1),
                                    [D.TanhTransform()])
    torch.testing.assert_close(dist.log_prob(params, u), ref.log_prob(torch.tanh(u)).sum(-1), rtol=1e-4, atol=1e-4)
    assert bool((dist.squash(u).abs() <= 1).all())
    torch.testing.assert_close(dist.squash(dist.mode(params)), torch.tanh(5 * torch.tanh(mean / 5)))


def test_trunc_normal_is_a_normalised_density_with_exact_entropy() -> None:
    dist = TruncNormalActions(size=1)
    params = torch.tensor([[0.8, -1.0], [-2.0, 3.0], [0.0, 0.0]])
    grid = torch.linspace(-1, 1, 20001)
    logp = torch.stack([dist.log_prob(params[i].expand(len(grid), 2), grid[:, None]) for i in range(3)])
    p = logp.exp()
    torch.testing.assert_close(torch.trapezoid(p, grid), torch.ones(3), atol=1e-3, rtol=0)
    torch.testing.assert_close(torch.trapezoid(-p * logp, grid), dist.entropy(params), atol=1e-3, rtol=0)
    samples = dist.sample(params.repeat(20000, 1), reparam=False).view(20000, 3)
    assert bool((samples.abs() <= 1).all())
    torch.testing.assert_close(samples.mean(0), torch.trapezoid(p * grid, grid), atol=0.02, rtol=0)


def test_reparameterised_samples_carry_gradients() -> None:
    for dist in (OneHotActions(3), TanhNormalActions(2), TruncNormalActions(2)):
        params = torch.randn(4, dist.params_size, requires_grad=True)
        action = dist.squash(dist.sample(params, reparam=True))
        (grad,) = torch.autograd.grad((action * torch.randn(4, dist.size)).sum(), params)
        assert grad.abs().sum() > 0, type(dist).__name__
        assert not dist.sample(params, reparam=False).requires_grad


def test_box_codec_round_trip_and_first_rows() -> None:
    codec = ActionCodec(ActionSpec(kind="continuous", shape=(2,), low=(-2.0, 0.0), high=(2.0, 1.0)))
    action = torch.tensor([[[2.0, 1.0], [-2.0, 0.5]]])  # [T=1, B=2, 2]
    vec = codec.encode(action, torch.zeros(1, 2, dtype=torch.bool))
    torch.testing.assert_close(vec, torch.tensor([[[1.0, 1.0], [-1.0, 0.0]]]))
    torch.testing.assert_close(codec.decode(vec), action)
    first = codec.encode(action, torch.tensor([[True, False]]))
    assert torch.equal(first[0, 0], torch.zeros(2))


def test_discrete_codec_makes_onehots_and_zeroes_first_rows() -> None:
    codec = ActionCodec(ActionSpec(kind="discrete", n=4))
    vec = codec.encode(torch.tensor([[0, 3]]), torch.tensor([[True, False]]))
    assert torch.equal(vec, torch.tensor([[[0.0, 0, 0, 0], [0, 0, 0, 1]]]))
    assert codec.decode(vec[0, 1:]).tolist() == [3]
    assert codec.decode(vec).dtype == torch.int64
