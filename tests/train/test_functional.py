"""The agent's parameter-free maths on tiny hand-checkable tensors."""

from __future__ import annotations

import math

import pytest
import torch

from dreamstream.train.model.functional import (
    categorical_kl,
    discount_weights,
    iwae_loss,
    kl_balanced,
    lambda_return,
    nearest_onehot,
    straight_through_onehot,
    symexp,
    symlog,
    twohot,
)


def test_lambda_return_matches_hand_computation() -> None:
    # Horizon 2, gamma 0.5, lambda 0.5; the second transition ends the episode (c_2 = 0).
    reward = torch.tensor([[1.0], [2.0]])  # r_1, r_2
    value = torch.tensor([[10.0], [20.0], [30.0]])  # v_0, v_1, v_2
    cont = torch.tensor([[1.0], [0.0]])  # c_1, c_2
    # G_1 = r_2 + 0.5 * 0 * (...) = 2
    # G_0 = r_1 + 0.5 * 1 * (0.5 * v_1 + 0.5 * G_1) = 1 + 0.5 * (10 + 1) = 6.5
    out = lambda_return(reward, value, cont, gamma=0.5, lam=0.5)
    assert out.shape == (2, 1)
    torch.testing.assert_close(out, torch.tensor([[6.5], [2.0]]))


def test_lambda_return_limits() -> None:
    g = torch.Generator().manual_seed(1)
    reward, value = torch.randn(4, 3, generator=g), torch.randn(5, 3, generator=g)
    cont = torch.ones(4, 3)
    # lambda = 0: one-step TD targets.
    torch.testing.assert_close(lambda_return(reward, value, cont, 0.9, 0.0), reward + 0.9 * value[1:])
    # lambda = 1: discounted rewards plus the discounted bootstrap value.
    expected = sum(0.9**k * reward[k] for k in range(4)) + 0.9**4 * value[4]
    torch.testing.assert_close(lambda_return(reward, value, cont, 0.9, 1.0)[0], expected)


def test_discount_weights_include_start_state() -> None:
    cont = torch.tensor([[0.5], [1.0], [0.2]])
    torch.testing.assert_close(discount_weights(cont), torch.tensor([[0.5], [0.5], [0.1]]))


def test_kl_balancing_value_and_gradient_split() -> None:
    post = torch.randn(2, 3, 4, requires_grad=True)
    prior = torch.randn(2, 3, 4, requires_grad=True)
    balance = 0.8
    loss, exact = kl_balanced(categorical_kl, post, prior, balance)
    plain = categorical_kl(post, prior)
    torch.testing.assert_close(loss, plain)  # the value is the plain KL ...
    torch.testing.assert_close(exact, plain.detach())
    g_post, g_prior = torch.autograd.grad(loss.sum(), (post, prior))
    p_post, p_prior = torch.autograd.grad(plain.sum(), (post, prior))
    torch.testing.assert_close(g_prior, balance * p_prior)  # ... but 80% of the gradient trains the prior
    torch.testing.assert_close(g_post, (1 - balance) * p_post)
    assert p_prior.abs().sum() > 0 and p_post.abs().sum() > 0


def test_straight_through_sample_is_onehot_with_softmax_gradient() -> None:
    logits = torch.randn(5, 4, requires_grad=True)
    sample = straight_through_onehot(logits, sample=True)
    assert torch.equal(sample.detach().sum(-1), torch.ones(5))
    assert set(sample.detach().unique().tolist()) <= {0.0, 1.0}
    weights = torch.randn(5, 4)
    (grad,) = torch.autograd.grad((sample * weights).sum(), logits)
    probs = torch.softmax(logits, -1).detach()
    (expected,) = torch.autograd.grad((torch.softmax(logits, -1) * weights).sum(), logits)
    torch.testing.assert_close(grad, expected)
    assert grad.abs().sum() > 0
    mode = straight_through_onehot(logits, sample=False).detach()
    assert torch.equal(mode.argmax(-1), probs.argmax(-1))


def test_straight_through_sampling_follows_the_probabilities() -> None:
    logits = torch.log(torch.tensor([0.7, 0.2, 0.1])).expand(20000, 3)
    freq = straight_through_onehot(logits).detach().mean(0)
    torch.testing.assert_close(freq, torch.tensor([0.7, 0.2, 0.1]), atol=0.02, rtol=0)


def test_symlog_round_trip() -> None:
    x = torch.tensor([-1000.0, -2.5, -1e-3, 0.0, 0.7, 3.0, 1e4])
    torch.testing.assert_close(symexp(symlog(x)), x)
    assert symlog(torch.tensor(1000.0)) < 7.0


def test_twohot_round_trip() -> None:
    bins = torch.linspace(-20, 20, 255)
    x = torch.tensor([-20.0, -3.3, -0.01, 0.0, 0.5, 7.77, 20.0])
    weights = twohot(x, bins)
    assert weights.shape == (7, 255)
    torch.testing.assert_close(weights.sum(-1), torch.ones(7))
    assert int((weights > 0).sum(-1).max()) <= 2
    torch.testing.assert_close((weights * bins).sum(-1), x)
    # Out-of-range values go to the end bins.
    torch.testing.assert_close((twohot(torch.tensor([99.0, -99.0]), bins) * bins).sum(-1), torch.tensor([20.0, -20.0]))
    # Through symlog, large rewards survive the round trip too.
    r = torch.tensor([-250.0, -1.0, 0.0, 1.0, 42.0])
    torch.testing.assert_close(symexp((twohot(symlog(r), bins) * bins).sum(-1)), r, rtol=1e-4, atol=1e-4)


def test_nearest_support_target() -> None:
    support = torch.tensor([-1.0, 0.0, 1.0, 10.0])
    target = nearest_onehot(torch.tensor([-0.9, 0.2, 0.8, 7.0]), support)
    assert target.argmax(-1).tolist() == [0, 1, 2, 3]
    assert torch.equal(target.sum(-1), torch.ones(4))


def test_iwae_with_one_sample_equals_the_elbo() -> None:
    losses = torch.randn(3, 2, 1) * 5
    torch.testing.assert_close(iwae_loss(losses, dim=2), losses[..., 0])


@pytest.mark.parametrize("samples", [2, 5])
def test_iwae_bound_is_tighter_than_the_mean(samples: int) -> None:
    losses = torch.randn(4, 3, samples) * 3
    bound = iwae_loss(losses, dim=2)
    assert bool((bound <= losses.mean(2) + 1e-6).all())
    assert bool((bound >= losses.min(2).values - 1e-6).all())
    # Identical samples give back the ELBO exactly.
    same = losses[..., :1].expand(-1, -1, samples)
    torch.testing.assert_close(iwae_loss(same, dim=2), losses[..., 0])
    # And the value is -log(mean(exp(-loss))).
    torch.testing.assert_close(bound[0, 0], -torch.log(torch.exp(-losses[0, 0]).mean()))
    assert math.isfinite(float(iwae_loss(torch.full((1, 1, samples), 1e4), 2)))
