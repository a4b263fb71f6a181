"""Model construction from specs, shapes, reset/TBTT state handling and bad-input errors."""

from __future__ import annotations

import math

import pytest
import torch
from agent_fixtures import grid_spec, image_spec, random_batch, tiny_config, vector_spec

from dreamstream.datasets.spec import ActionSpec, EpisodeSpec, FieldSpec
from dreamstream.errors import UserError
from dreamstream.train.loop.learner import Learner
from dreamstream.train.loop.metrics import describe, metrics_to_floats
from dreamstream.train.model.agent import Agent
from dreamstream.train.model.batch import check_batch
from dreamstream.train.model.config import ModelConfig, OptimConfig
from dreamstream.train.model.encoders import class_offsets, onehot_grid
from dreamstream.train.model.rssm import RSSMState
from dreamstream.train.model.world_model import WorldModel
from dreamstream.train.runtime import seed_everything


@pytest.mark.parametrize("shape", [(16, 16, 3), (56, 56, 3), (48, 88, 3), (64, 64, 1), (100, 72, 3)])
def test_image_decoder_mirrors_any_image_size(shape: tuple[int, int, int]) -> None:
    spec = EpisodeSpec(observations={"image": FieldSpec(shape, "uint8", "image")},
                       action=ActionSpec(kind="discrete", n=2))
    wm = WorldModel(spec, tiny_config())
    batch = random_batch(spec, steps=2, batch=1)
    feats = torch.randn(2, 1, tiny_config().feature_size)
    assert wm.encoder({"image": batch["image"]}).shape == (2, 1, wm.encoder.out_dim)
    decoded = wm.decoders["image"].decode(feats)
    assert decoded.shape == (2, 1, *shape) and decoded.dtype == torch.uint8
    assert wm.decoders["image"].loss(feats, batch["image"]).shape == (2, 1)


def test_dreamerv2_sizes_at_64x64() -> None:
    config = ModelConfig()
    wm = WorldModel(image_spec(64, 18), config)
    assert wm.encoder.out_dim == 32 * config.cnn_depth  # 1536 at depth 48, as DreamerV2
    assert config.feature_size == 1024 + 32 * 32


def test_fields_become_encoders_and_decoders_except_map() -> None:
    agent = Agent(grid_spec(with_map=True), tiny_config())
    assert list(agent.wm.encoder.encoders) == ["direction", "grid"]
    assert list(agent.wm.decoders) == ["direction", "grid"]
    assert agent.probe is not None and agent.input_fields == ["direction", "grid", "map"]
    assert Agent(grid_spec(with_map=True), tiny_config(map_probe=False)).probe is None
    both = Agent(vector_spec(), tiny_config())
    assert sorted(both.wm.decoders) == ["speed", "state"]


def test_unsupported_field_kind_is_named() -> None:
    spec = EpisodeSpec(observations={"image": FieldSpec((16, 16, 3), "uint8", "image"),
                                     "door_open": FieldSpec((), "bool", "flag")},
                       action=ActionSpec(kind="discrete", n=2))
    with pytest.raises(UserError, match="'door_open'.*flag"):
        Agent(spec, tiny_config())


def test_small_image_is_refused_with_a_hint() -> None:
    spec = EpisodeSpec(observations={"image": FieldSpec((7, 7, 3), "uint8", "image")},
                       action=ActionSpec(kind="discrete", n=7))
    with pytest.raises(UserError, match="7x7.*categorical"):
        Agent(spec, tiny_config())


def test_non_categorical_map_is_refused() -> None:
    spec = EpisodeSpec(observations={"grid": grid_spec().observations["grid"],
                                     "map": FieldSpec((5, 5), "float32", "vector")},
                       action=ActionSpec(kind="discrete", n=7))
    with pytest.raises(UserError, match="'map'"):
        Agent(spec, tiny_config())


def test_batch_missing_or_malformed_field_is_named() -> None:
    spec = grid_spec()
    learner = Learner(Agent(spec, tiny_config()), OptimConfig(), "cpu")
    batch = random_batch(spec)
    del batch["map"]
    with pytest.raises(UserError, match=r"missing field\(s\) \['map'\]"):
        learner.train_step(batch)
    batch = random_batch(spec)
    batch["reward"] = batch["reward"].double()
    with pytest.raises(UserError, match="'reward' has dtype torch.float64"):
        learner.train_step(batch)
    batch = random_batch(spec)
    batch["grid"] = batch["grid"][:, :, :6]
    with pytest.raises(UserError, match="'grid' has shape"):
        check_batch(batch, spec, ["grid"])


def _observe(wm: WorldModel, batch: dict[str, torch.Tensor], state: RSSMState, sample: bool = False):
    return wm.observe(batch, state, sample=sample)


def _slice(batch: dict[str, torch.Tensor], start: int, stop: int | None = None) -> dict[str, torch.Tensor]:
    return {k: v[start:stop] for k, v in batch.items()}


def test_reset_zeroes_the_state_only_where_set() -> None:
    spec = image_spec()
    wm = WorldModel(spec, tiny_config())
    batch = random_batch(spec, steps=6, batch=2)
    batch["is_first"][:] = False
    batch["reset"][:] = False
    state = RSSMState(torch.randn(2, 32), torch.randn(2, 16))
    plain = _observe(wm, batch, state)
    batch["reset"][3, 0] = True  # a TBTT reset of row 0 at step 3
    out = _observe(wm, batch, state)
    # Row 1 is untouched, row 0 is unchanged before the reset and differs from it on.
    torch.testing.assert_close(out.deter[:, 1], plain.deter[:, 1])
    torch.testing.assert_close(out.deter[:3, 0], plain.deter[:3, 0])
    assert not torch.allclose(out.deter[3:, 0], plain.deter[3:, 0])
    # From step 3 on, row 0 is what a fresh zero state gives on the rest of the sequence.
    fresh = _observe(wm, _slice(batch, 3), wm.rssm.initial(2))
    torch.testing.assert_close(out.deter[3:, 0], fresh.deter[:, 0])
    torch.testing.assert_close(out.stoch[3:, 0], fresh.stoch[:, 0])


def test_carrying_state_across_batches_equals_one_long_batch() -> None:
    spec = grid_spec()
    wm = WorldModel(spec, tiny_config())
    batch = random_batch(spec, steps=8, batch=3)  # only the first row resets
    torch.manual_seed(7)
    long = _observe(wm, batch, wm.rssm.initial(3), sample=True)
    torch.manual_seed(7)
    first = _observe(wm, _slice(batch, 0, 5), wm.rssm.initial(3), sample=True)
    second = _observe(wm, _slice(batch, 5), first.last, sample=True)
    torch.testing.assert_close(torch.cat([first.deter, second.deter]), long.deter)
    torch.testing.assert_close(torch.cat([first.stoch, second.stoch]), long.stoch)
    torch.testing.assert_close(second.last.deter, long.last.deter)
    # Without the carried state the second half would differ.
    torch.manual_seed(7)
    _observe(wm, _slice(batch, 0, 5), wm.rssm.initial(3), sample=True)
    cold = _observe(wm, _slice(batch, 5), wm.rssm.initial(3), sample=True)
    assert not torch.allclose(cold.deter, second.deter)


def test_learner_returns_the_state_after_the_batch() -> None:
    spec = image_spec()
    learner = Learner(Agent(spec, tiny_config()), OptimConfig(), "cpu")
    batch = random_batch(spec, steps=4, batch=2)
    _, state = learner.train_step(batch, learner.initial_state(2))
    assert state.deter.shape == (2, 32) and not state.deter.requires_grad
    assert state.deter.abs().sum() > 0


@pytest.mark.parametrize("samples", [1, 3])
def test_iwae_world_model_loss(samples: int) -> None:
    spec = image_spec()
    wm = WorldModel(spec, tiny_config(iwae_samples=samples))
    batch = random_batch(spec, steps=3, batch=2)
    out = wm(batch, wm.rssm.initial(2))
    assert out.features.shape == (3, 2, samples, tiny_config().feature_size)
    assert out.last.deter.shape == (2, 32)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert all(p.grad is not None for p in wm.rssm.parameters())


@pytest.mark.parametrize("options", [{"gru": "norm_gru"}, {"classes": 0}, {"layer_norm": False},
                                     {"gru": "norm_gru", "classes": 0, "iwae_samples": 2}])
def test_model_options_train(options: dict) -> None:
    """DreamerV2's layer-normed GRU, Gaussian latents, no LayerNorm, IWAE: each builds, steps and learns."""
    spec = image_spec()
    learner = Learner(Agent(spec, tiny_config(**options)),
                      OptimConfig(lr_model=3e-3, weight_decay=0.0), "cpu")
    batch = random_batch(spec)
    first = metrics_to_floats(learner.train_step(batch)[0])
    for _ in range(15):
        last = metrics_to_floats(learner.train_step(batch)[0])
    assert all(math.isfinite(v) for v in last.values()), last
    assert last["loss/image"] < first["loss/image"]


def test_seed_everything_makes_agents_identical() -> None:
    seed_everything(3)
    a = Agent(grid_spec(), tiny_config())
    seed_everything(3)
    b = Agent(grid_spec(), tiny_config())
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_every_metric_is_documented() -> None:
    for spec in (grid_spec(), vector_spec()):
        agent = Agent(spec, tiny_config())
        metrics, _ = Learner(agent, OptimConfig(), "cpu").train_step(random_batch(spec))
        undocumented = [k for k in metrics if describe(k, agent.input_fields) is None]
        assert not undocumented
        assert len(metrics) >= 18


def test_grid_cells_become_one_onehot_per_channel() -> None:
    classes = (11, 6, 3)
    grid = torch.tensor([[3, 5, 2], [0, 0, 0]], dtype=torch.uint8)
    out = onehot_grid(grid, class_offsets(classes), sum(classes))
    assert out.shape == (2, 20)
    assert out[0].nonzero().flatten().tolist() == [3, 11 + 5, 17 + 2]
    assert out[1].nonzero().flatten().tolist() == [0, 11, 17]


def test_dream_predicts_every_field_open_loop() -> None:
    spec = grid_spec()
    wm = WorldModel(spec, tiny_config())
    batch = random_batch(spec, steps=6, batch=2)
    dream = wm.dream(batch, wm.rssm.initial(2), context=2)
    assert dream["grid"].shape == batch["grid"].shape and dream["grid"].dtype == torch.uint8
    assert dream["direction"].shape == batch["direction"].shape
    assert dream["reward"].shape == (6, 2) and dream["cont"].shape == (6, 2)
    assert "map" not in dream
    # The first `context` rows are reconstructions from the posterior, whatever comes after.
    full = wm.dream(batch, wm.rssm.initial(2), context=6)
    assert torch.equal(dream["grid"][:2], full["grid"][:2])
    image = image_spec()
    out = WorldModel(image, tiny_config()).dream(random_batch(image), RSSMState(torch.zeros(2, 32),
                                                                                 torch.zeros(2, 16)), 1)
    assert out["image"].shape == (4, 2, 16, 16, 3) and out["image"].dtype == torch.uint8
