"""Tiny specs, configs and random batches for the agent-maths tests (CPU, seconds each)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from dreamstream.datasets.loader.batch import torch_dtype
from dreamstream.datasets.spec import ActionSpec, EpisodeSpec, FieldSpec
from dreamstream.train.model.config import ModelConfig

MakeBatch = Callable[..., dict[str, torch.Tensor]]


def tiny_config(**overrides: object) -> ModelConfig:
    """Smaller than ModelConfig.debug(): a few thousand parameters per part."""
    base = dict(deter=32, stoch=4, classes=4, hidden=32, cnn_depth=4, dense_hidden=32, dense_embed=16,
                encoder_layers=1, decoder_layers=1, head_layers=1, ac_hidden=32, ac_layers=1, imag_horizon=3,
                probe_hidden=32, probe_layers=1, target_interval=1)
    base.update(overrides)
    return ModelConfig(**base)  # type: ignore[arg-type]


def image_spec(side: int = 16, n_actions: int = 3) -> EpisodeSpec:
    return EpisodeSpec(observations={"image": FieldSpec((side, side, 3), "uint8", "image")},
                       action=ActionSpec(kind="discrete", n=n_actions))


def grid_spec(with_map: bool = True) -> EpisodeSpec:
    """MiniGrid as collected: a 7x7x3 view with classes (11, 6, 3), the facing direction, 7 actions, a 5x5 map."""
    obs = {"grid": FieldSpec((7, 7, 3), "uint8", "categorical", (11, 6, 3)),
           "direction": FieldSpec((1,), "uint8", "categorical", (4,))}
    if with_map:
        obs["map"] = FieldSpec((5, 5, 3), "uint8", "categorical", (11, 6, 3))
    return EpisodeSpec(observations=obs, action=ActionSpec(kind="discrete", n=7))


def vector_spec() -> EpisodeSpec:
    """A continuous-control-like spec: a 5-vector, a scalar and a 2-D Box action in [-2, 2] x [0, 1]."""
    return EpisodeSpec(observations={"state": FieldSpec((5,), "float32", "vector"),
                                     "speed": FieldSpec((), "float32", "scalar")},
                       action=ActionSpec(kind="continuous", shape=(2,), low=(-2.0, 0.0), high=(2.0, 1.0)))


def random_batch(spec: EpisodeSpec, steps: int = 4, batch: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    """A [T, B] batch that obeys the batch contract (first rows reset, zero action and reward there)."""
    g = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for name, field in spec.observations.items():
        shape = (steps, batch, *field.shape)
        if field.kind == "categorical":
            assert field.classes is not None
            chans = [torch.randint(0, c, shape[:-1], generator=g) for c in field.classes]
            out[name] = torch.stack(chans, -1).to(torch_dtype(field.dtype))
        elif field.kind == "image":
            # One random colour per frame plus a little noise: learnable from a few dozen steps.
            colour = torch.randint(0, 256, (steps, batch, 1, 1, field.shape[-1]), generator=g)
            noise = torch.randint(-8, 9, shape, generator=g)
            out[name] = (colour + noise).clamp(0, 255).to(torch.uint8)
        else:
            out[name] = torch.randn(shape, generator=g)
    is_first = torch.zeros(steps, batch, dtype=torch.bool)
    is_first[0] = True
    if spec.action.kind == "discrete":
        action = torch.randint(0, int(spec.action.n or 1), (steps, batch), generator=g)
    else:
        low = torch.tensor(spec.action.low)
        high = torch.tensor(spec.action.high)
        action = low + (high - low) * torch.rand(steps, batch, *spec.action.shape, generator=g)
    action[is_first] = 0
    reward = torch.randint(-1, 2, (steps, batch), generator=g).float()
    reward[is_first] = 0
    is_terminal = torch.zeros(steps, batch, dtype=torch.bool)
    is_terminal[-1, 0] = True
    out.update(action=action, reward=reward, is_first=is_first, is_last=is_terminal.clone(),
               is_terminal=is_terminal, reset=is_first.clone())
    return out
