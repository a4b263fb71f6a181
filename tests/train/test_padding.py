"""Padding rows (`valid` False, from a skipped shard or a stream that ran out) train nothing."""

from __future__ import annotations

import pytest
import torch
from agent_fixtures import grid_spec, image_spec, random_batch, tiny_config

from dreamstream.datasets.spec import EpisodeSpec
from dreamstream.train.model.agent import Agent
from dreamstream.train.model.batch import mask_padding
from dreamstream.train.model.functional import masked_mean


def padded_batch(spec: EpisodeSpec) -> dict[str, torch.Tensor]:
    """T=6, B=2: row 1 is padding at steps 2-3 (data resumes at 4), row 0 ends in padding at step 5."""
    batch = random_batch(spec, steps=6, batch=2, seed=1)
    valid = torch.ones(6, 2, dtype=torch.bool)
    valid[2:4, 1] = False
    valid[5, 0] = False
    batch["valid"] = valid
    return batch


def with_garbage(batch: dict[str, torch.Tensor], seed: int, hostile: bool) -> dict[str, torch.Tensor]:
    """The same batch with other values on its padding rows: random in-range data, or values that would
    crash or poison the step if they were read (NaN, out-of-range classes and actions, no reset)."""
    other = random_batch_like(batch, seed)
    invalid = ~batch["valid"]
    out = {}
    for name, tensor in batch.items():
        if name == "valid":
            out[name] = tensor
            continue
        garbage = other[name].clone()
        if hostile:
            if garbage.is_floating_point():
                garbage[:] = float("nan")
            elif garbage.dtype == torch.bool:
                garbage[:] = name != "reset"  # never a reset: the model must restart by itself
            else:
                garbage[:] = 250 if garbage.dtype == torch.uint8 else 99
        mask = invalid.reshape(*invalid.shape, *[1] * (tensor.dim() - 2))
        out[name] = torch.where(mask, garbage, tensor)
    return out


def random_batch_like(batch: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, tensor in batch.items():
        if tensor.is_floating_point():
            out[name] = torch.randn(tensor.shape, generator=g)
        elif tensor.dtype == torch.bool:
            out[name] = torch.rand(tensor.shape, generator=g) < 0.5
        else:
            out[name] = torch.randint(0, 3, tensor.shape, generator=g).to(tensor.dtype)
    return out


def step(agent: Agent, batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor],
                                                                 torch.Tensor]:
    """(losses, gradients by parameter name, last state) of one step with fixed sampling noise."""
    agent.zero_grad(set_to_none=True)
    torch.manual_seed(7)
    state = agent.initial_state(2)
    losses, _, last = agent.losses(batch, state)
    sum(losses.values()).backward()
    grads = {n: p.grad.clone() for n, p in agent.named_parameters() if p.grad is not None}
    return {k: v.detach() for k, v in losses.items()}, grads, last.deter


@pytest.mark.parametrize("spec", [grid_spec(with_map=True), image_spec()], ids=["grid+map probe", "image"])
def test_padding_rows_change_no_loss_and_no_gradient(spec: EpisodeSpec) -> None:
    agent = Agent(spec, tiny_config())
    batch = padded_batch(spec)
    losses, grads, last = step(agent, batch)
    assert all(torch.isfinite(v) for v in losses.values())
    for seed, hostile in ((2, False), (3, True)):
        other_losses, other_grads, other_last = step(agent, with_garbage(batch, seed, hostile))
        for key in losses:
            torch.testing.assert_close(other_losses[key], losses[key], rtol=0, atol=0, msg=key)
        assert other_grads.keys() == grads.keys()
        for name in grads:
            torch.testing.assert_close(other_grads[name], grads[name], rtol=0, atol=0, msg=name)
        torch.testing.assert_close(other_last, last, rtol=0, atol=0)
    # Row 0 ends in padding: the next batch starts it from a fresh state.
    assert torch.count_nonzero(last[0]) == 0 and torch.count_nonzero(last[1]) > 0

    # The check can fail: without `valid`, the same in-range garbage changes the losses.
    plain = {k: v for k, v in batch.items() if k != "valid"}
    garbage = {k: v for k, v in with_garbage(batch, 2, False).items() if k != "valid"}
    losses_plain, _, _ = step(agent, plain)
    losses_garbage, _, _ = step(agent, garbage)
    assert losses_plain["model"] != losses_garbage["model"]


def test_an_all_valid_batch_trains_as_one_without_valid() -> None:
    spec = grid_spec(with_map=True)
    agent = Agent(spec, tiny_config())
    batch = random_batch(spec, steps=5, batch=2)
    losses, grads, _ = step(agent, batch)
    masked_losses, masked_grads, _ = step(agent, {**batch, "valid": torch.ones(5, 2, dtype=torch.bool)})
    for key in losses:
        torch.testing.assert_close(masked_losses[key], losses[key], msg=key)
    for name in grads:
        torch.testing.assert_close(masked_grads[name], grads[name], msg=name)


def test_mask_padding_zeroes_padding_and_resets_after_it() -> None:
    spec = image_spec()
    batch = with_garbage(padded_batch(spec), 3, hostile=True)
    out, weight = mask_padding(batch)
    assert weight is not None and weight.dtype == torch.float32
    assert weight.sum() == 12 - 3
    assert torch.count_nonzero(out["image"][2:4, 1]) == 0 and not torch.isnan(out["reward"]).any()
    assert torch.equal(out["image"][:2, 1], batch["image"][:2, 1])
    # Reset on the padding rows and on the first real row after them; elsewhere as the batch said.
    assert out["reset"][:, 1].tolist() == [True, False, True, True, True, False]
    assert out["reset"][:, 0].tolist() == [True, False, False, False, False, True]
    assert mask_padding({"reset": batch["reset"]}) == ({"reset": batch["reset"]}, None)
    # So the model state on the first real row after padding is a fresh start's.
    wm = Agent(spec, tiny_config()).wm
    seq = wm.observe(out, wm.rssm.initial(2), sample=False)
    fresh = wm.observe({k: v[4:] for k, v in out.items()}, wm.rssm.initial(2), sample=False)
    torch.testing.assert_close(seq.deter[4:, 1], fresh.deter[:, 1])


def test_masked_mean() -> None:
    x = torch.tensor([[1.0, 2.0], [3.0, 100.0]])
    assert masked_mean(x, torch.tensor([[1.0, 1.0], [1.0, 0.0]])) == 2.0
    assert masked_mean(x, torch.tensor([1.0, 0.0])) == 2.0  # broadcast over leading dims
    assert masked_mean(x, torch.zeros(2, 2)) == 0.0  # nothing real: no loss, no NaN
    assert masked_mean(x, None) == x.mean()
