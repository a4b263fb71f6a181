"""Every loss learns on a fixed batch; both actor gradients reach the actor; the step's plumbing holds."""

from __future__ import annotations

import io

import pytest
import torch
from agent_fixtures import grid_spec, image_spec, random_batch, tiny_config, vector_spec

from dreamstream.datasets.spec import ActionSpec, EpisodeSpec
from dreamstream.train.loop.learner import Learner
from dreamstream.train.loop.metrics import metrics_to_floats
from dreamstream.train.model.actor_critic import actor_critic_losses, imagine
from dreamstream.train.model.agent import Agent
from dreamstream.train.model.config import OptimConfig
from dreamstream.train.model.rssm import RSSMState

FAST = OptimConfig(lr_model=3e-3, lr_actor=1e-3, lr_critic=3e-3, lr_probe=3e-3, weight_decay=0.0)


def train(learner: Learner, batch: dict[str, torch.Tensor], steps: int, same_noise: bool = False
          ) -> list[dict[str, float]]:
    """Train on one batch; `same_noise` reseeds every step (common random numbers: a deterministic objective)."""
    history = []
    for _ in range(steps):
        if same_noise:
            torch.manual_seed(123)
        metrics, _ = learner.train_step(batch, learner.initial_state(batch["reset"].shape[1]))
        history.append(metrics_to_floats(metrics))
    return history


def early_late(history: list[dict[str, float]], key: str, n: int = 3) -> tuple[float, float]:
    return (sum(h[key] for h in history[:n]) / n, sum(h[key] for h in history[-n:]) / n)


@pytest.mark.parametrize("reward_head", ["normal", "support", "twohot"])
def test_image_reward_and_terminal_losses_decrease(reward_head: str) -> None:
    spec = image_spec()
    learner = Learner(Agent(spec, tiny_config(reward_head=reward_head)), FAST, "cpu")
    history = train(learner, random_batch(spec, steps=4, batch=2), 40)
    for key in ("loss/image", "loss/reward", "loss/terminal", "loss/model"):
        early, late = early_late(history, key)
        assert late < 0.7 * early, (key, early, late)


def test_grid_and_map_probe_losses_decrease() -> None:
    spec = grid_spec(with_map=True)
    learner = Learner(Agent(spec, tiny_config()), FAST, "cpu")
    history = train(learner, random_batch(spec, steps=4, batch=2), 40)
    for key in ("loss/grid", "loss/direction", "loss/probe"):
        early, late = early_late(history, key)
        assert late < 0.7 * early, (key, early, late)
    early, late = early_late(history, "probe/map_acc")
    assert late > early + 0.1


def test_vector_and_scalar_losses_decrease() -> None:
    spec = vector_spec()
    learner = Learner(Agent(spec, tiny_config()), FAST, "cpu")
    history = train(learner, random_batch(spec, steps=4, batch=2), 40)
    for key in ("loss/state", "loss/speed", "loss/reward"):
        early, late = early_late(history, key)
        assert late < 0.7 * early, (key, early, late)


def test_kl_decreases_when_it_is_the_only_loss() -> None:
    spec = image_spec()
    config = tiny_config(image_weight=0.0, reward_weight=0.0, terminal_weight=0.0, kl_weight=1.0)
    learner = Learner(Agent(spec, config), FAST, "cpu")
    history = train(learner, random_batch(spec, steps=4, batch=2), 30)
    early, late = early_late(history, "loss/kl")
    assert late < 0.5 * early, (early, late)


def frozen_except(part: str) -> OptimConfig:
    """Only `part` learns (lr 0 elsewhere, no weight decay): its loss is then a fixed objective."""
    lrs = {"lr_model": 0.0, "lr_actor": 0.0, "lr_critic": 0.0, "lr_probe": 0.0, f"lr_{part}": 3e-3}
    return OptimConfig(weight_decay=0.0, **lrs)


def test_critic_loss_decreases() -> None:
    spec = image_spec()
    learner = Learner(Agent(spec, tiny_config(target_interval=1000)), frozen_except("critic"), "cpu")
    history = train(learner, random_batch(spec, steps=4, batch=4), 30, same_noise=True)
    early, late = early_late(history, "loss/critic")
    assert late < 0.5 * early, (early, late)


def _continuous(shape: tuple[int, ...] = (2,)) -> EpisodeSpec:
    spec = vector_spec()
    return EpisodeSpec(observations=spec.observations,
                       action=ActionSpec(kind="continuous", shape=shape, low=(-2.0, 0.0), high=(2.0, 1.0)))


@pytest.mark.parametrize("spec_name,dist", [("discrete", "tanh_normal"), ("continuous", "tanh_normal"),
                                            ("continuous", "trunc_normal")])
def test_dynamics_actor_loss_decreases(spec_name: str, dist: str) -> None:
    spec = image_spec() if spec_name == "discrete" else _continuous()
    config = tiny_config(actor_grad="dynamics", continuous_dist=dist, target_interval=1000)
    learner = Learner(Agent(spec, config), frozen_except("actor"), "cpu")
    history = train(learner, random_batch(spec, steps=4, batch=4), 30, same_noise=True)
    early, late = early_late(history, "loss/actor")
    assert late < early, (early, late)  # common random numbers: a deterministic objective
    assert early_late(history, "return/mean")[1] > early_late(history, "return/mean")[0]


@pytest.mark.parametrize("spec_name", ["discrete", "continuous"])
def test_reinforce_actor_loss_decreases_on_a_fixed_rollout(spec_name: str) -> None:
    """With the imagined actions and their advantages held fixed, REINFORCE is a fixed objective to descend."""
    spec = image_spec() if spec_name == "discrete" else _continuous()
    agent = Agent(spec, tiny_config(actor_grad="reinforce"))
    with torch.no_grad():
        out = agent.wm(random_batch(spec, steps=4, batch=4), agent.initial_state(4))
    start = RSSMState(*(s.flatten(0, 2) for s in out.states))
    rollout = imagine(agent.wm.rssm, agent.actor, start, agent.config.imag_horizon, dynamics=False)
    optimizer = torch.optim.Adam(agent.actor.parameters(), lr=3e-3)
    history = []
    for _ in range(30):
        loss, _, metrics = actor_critic_losses(rollout, agent.actor, agent.critic, agent.critic_target,
                                               agent.wm.reward, agent.wm.terminal, agent.config, "reinforce")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(metrics_to_floats(metrics))
    early, late = early_late(history, "loss/actor")
    assert late < early - 0.1 * abs(early), (early, late)


@pytest.mark.parametrize("actor_grad", ["reinforce", "dynamics"])
@pytest.mark.parametrize("action", ["discrete", "tanh_normal", "trunc_normal"])
def test_actor_gradient_reaches_every_actor_parameter(actor_grad: str, action: str) -> None:
    spec = image_spec() if action == "discrete" else _continuous()
    # No entropy bonus: the only gradient is the one through log-probs (reinforce) or the dynamics.
    config = tiny_config(actor_grad=actor_grad, continuous_dist=action if action != "discrete" else "tanh_normal",
                         actor_entropy=0.0)
    agent = Agent(spec, config)
    losses, _, _ = agent.losses(random_batch(spec, steps=4, batch=2), agent.initial_state(2))
    grads = torch.autograd.grad(losses["actor"], list(agent.actor.parameters()), allow_unused=True)
    for (name, _), grad in zip(agent.actor.named_parameters(), grads, strict=True):
        assert grad is not None, name
        assert torch.isfinite(grad).all(), name
    assert all(g.abs().sum() > 0 for g in grads if g is not None)
    weight_grads = [g for (n, _), g in zip(agent.actor.named_parameters(), grads, strict=True) if n.endswith("weight")]
    assert all(g.abs().sum() > 0 for g in weight_grads)


def test_actor_loss_never_trains_the_world_model() -> None:
    spec = _continuous()
    config = tiny_config(actor_grad="dynamics")
    opt = OptimConfig(grad_clip=1e9, grad_clip_ac=1e9)
    torch.manual_seed(5)
    learner = Learner(Agent(spec, config), opt, "cpu")
    batch = random_batch(spec, steps=4, batch=2)
    state = learner.initial_state(2)
    reference = Agent(spec, config)
    reference.load_state_dict(learner.agent.state_dict())
    torch.manual_seed(9)
    learner.train_step(batch, state)
    torch.manual_seed(9)
    losses, _, _ = reference.losses(batch, state)
    losses["model"].backward()
    for (name, p), (_, q) in zip(learner.agent.wm.named_parameters(), reference.wm.named_parameters(), strict=True):
        if q.grad is None:
            assert p.grad is None or not p.grad.any(), name
        else:
            torch.testing.assert_close(p.grad, q.grad, msg=name)


def test_termination_is_learned_from_is_terminal_not_is_last() -> None:
    spec = image_spec()
    batch = random_batch(spec, steps=4, batch=2)
    batch["is_terminal"][:] = False
    batch["is_last"][:] = False
    batch["is_last"][-1] = True  # both rows are cut by a time limit: truncations, not terminations
    agent = Agent(spec, tiny_config())
    learner = Learner(agent, FAST, "cpu")
    train(learner, batch, 30)
    with torch.no_grad():
        out = agent.wm(batch, agent.initial_state(2))
        cont = agent.wm.terminal.cont(out.features)
    assert bool((cont[-1] > 0.9).all()), cont[-1]


def test_target_critic_is_copied_every_interval() -> None:
    spec = image_spec()
    learner = Learner(Agent(spec, tiny_config(target_interval=2)), FAST, "cpu")
    agent, batch = learner.agent, random_batch(spec)

    def equal(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
        return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))

    def critic() -> list[torch.Tensor]:
        return [p.detach().clone() for p in agent.critic.parameters()]

    def target() -> list[torch.Tensor]:
        return list(agent.critic_target.parameters())

    at_start = critic()
    learner.train_step(batch)  # step 0: copy, then the critic moves
    assert equal(target(), at_start) and not equal(target(), critic())
    learner.train_step(batch)  # step 1: no copy
    assert equal(target(), at_start)
    before_step_2 = critic()
    learner.train_step(batch)  # step 2: copy of the critic as it was before this step
    assert equal(target(), before_step_2) and not equal(target(), at_start)
    assert not any(p.requires_grad for p in agent.critic_target.parameters())


def test_resume_from_a_weights_only_checkpoint_continues_identically() -> None:
    spec = grid_spec()
    batch = random_batch(spec)
    learner = Learner(Agent(spec, tiny_config()), FAST, "cpu")
    train(learner, batch, 2)
    buffer = io.BytesIO()
    torch.save(learner.state_dict(), buffer)
    buffer.seek(0)
    resumed = Learner(Agent(spec, tiny_config()), FAST, "cpu")
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    assert resumed.step == 2
    torch.manual_seed(3)
    a = metrics_to_floats(learner.train_step(batch)[0])
    torch.manual_seed(3)
    b = metrics_to_floats(resumed.train_step(batch)[0])
    assert a == b


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_steps_are_finite(precision: str) -> None:
    spec = image_spec()
    learner = Learner(Agent(spec, tiny_config()), OptimConfig(precision=precision), "cpu")
    assert learner.precision == precision
    history = train(learner, random_batch(spec), 3)
    # fp16's GradScaler skips steps whose gradients overflow (grad norms inf/nan); losses and weights stay finite.
    for metrics in history:
        assert all(torch.isfinite(torch.tensor(v)) for k, v in metrics.items() if k.startswith("loss/")), metrics
    assert all(torch.isfinite(p).all() for p in learner.agent.parameters())
    if precision == "bf16":
        assert all(torch.isfinite(torch.tensor(v)) for v in history[-1].values())


def test_precision_auto_is_fp32_on_cpu() -> None:
    learner = Learner(Agent(image_spec(), tiny_config()), OptimConfig(), "cpu")
    assert learner.precision == "fp32" and learner.autocast_dtype is None


@pytest.mark.parametrize("spec_name", ["grid", "continuous"])
def test_both_graphs_trace_without_breaks(spec_name: str) -> None:
    """No graph breaks (no .item(), no branching on tensor values): what torch.compile needs."""
    spec = grid_spec() if spec_name == "grid" else _continuous()
    config = tiny_config(iwae_samples=2)
    agent = Agent(spec, config)
    reference = Agent(spec, config)
    reference.load_state_dict(agent.state_dict())
    agent.compile(backend="eager", fullgraph=True)
    batch, state = random_batch(spec), agent.initial_state(2)
    torch.manual_seed(1)
    losses, metrics, _ = agent.losses(batch, state)
    torch.manual_seed(1)
    eager, _, _ = reference.losses(batch, state)
    for key in losses:
        torch.testing.assert_close(losses[key], eager[key])
    assert metrics["loss/model"].shape == ()
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in agent.actor.parameters())
