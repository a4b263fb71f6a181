"""Observation encoders chosen from the dataset spec: a CNN per image, MLPs for grids and vectors.

Every observation field of the spec is an input except `map` (the map probe's target). Fields are encoded
separately, in name order, and their embeddings concatenated. Sizes come from the spec, never from config.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dreamstream.datasets.spec import EpisodeSpec, FieldSpec
from dreamstream.errors import UserError
from dreamstream.train.model.config import ModelConfig
from dreamstream.train.model.networks import mlp

MAP_FIELD = "map"
"""The observation field that the map probe predicts (never a model input)."""

MODEL_KINDS = ("image", "categorical", "vector", "scalar")
"""Observation kinds the model can encode and reconstruct."""

MIN_IMAGE_SIDE = 16
"""Smaller images (such as MiniGrid's 7x7 symbolic view) belong in a `categorical` field."""
CNN_SIDE = 46
"""The smallest side that four valid kernel-4 stride-2 convolutions reduce to 1; smaller sides are padded."""


def split_fields(spec: EpisodeSpec, map_probe: bool) -> tuple[dict[str, FieldSpec], FieldSpec | None]:
    """(model input/reconstruction fields in name order, the map probe's field or None); checks every kind."""
    inputs: dict[str, FieldSpec] = {}
    probe = None
    for name in sorted(spec.observations):
        field = spec.observations[name]
        if name == MAP_FIELD:
            if field.kind != "categorical":
                raise UserError(f"field 'map' has kind {field.kind!r}: the map probe needs a categorical field")
            if map_probe:
                probe = field
            continue
        if field.kind not in MODEL_KINDS:
            raise UserError(f"observation field {name!r} has kind {field.kind!r}, which the model cannot encode; "
                            f"supported kinds: {MODEL_KINDS} (store a flag as a 'vector' field)")
        if field.kind == "image":
            if len(field.shape) != 3:
                raise UserError(f"image field {name!r} has shape {field.shape}; expected (height, width, channels)")
            if min(field.shape[:2]) < MIN_IMAGE_SIDE:
                raise UserError(f"image field {name!r} is {field.shape[0]}x{field.shape[1]}: too small for the "
                                f"CNN (sides >= {MIN_IMAGE_SIDE}); store a symbolic grid as a categorical field")
        inputs[name] = field
    if not inputs:
        raise UserError(f"the spec has no observation field the model can use: {sorted(spec.observations)}")
    return inputs, probe


def cnn_sides(side: int, layers: int = 4) -> list[int]:
    """Spatial sizes through the encoder: padded input side, then after each valid k4 s2 convolution."""
    sizes = [max(side, CNN_SIDE)]
    for _ in range(layers):
        sizes.append((sizes[-1] - 4) // 2 + 1)
    return sizes


def image_to_float(image: Tensor) -> Tensor:
    """uint8 [N, H, W, C] -> float [N, C, H, W] in [-0.5, 0.5]."""
    return image.permute(0, 3, 1, 2).float() / 255.0 - 0.5


def class_offsets(classes: tuple[int, ...]) -> Tensor:
    """Where each channel's classes start in the concatenated one-hot: (0, c1, c1 + c2, ...)."""
    return torch.tensor([0, *classes[:-1]]).cumsum(0)


def onehot_grid(x: Tensor, offsets: Tensor, total: int) -> Tensor:
    """Integer grid [..., C] -> multi-hot [..., total] float (one one-hot per channel, concatenated)."""
    return F.one_hot(x.long() + offsets, total).sum(-2).float()


class ImageEncoder(nn.Module):
    """DreamerV2's CNN (four kernel-4 stride-2 ELU convolutions, depth doubling) for any image size."""

    def __init__(self, field: FieldSpec, depth: int) -> None:
        super().__init__()
        height, width, channels = field.shape
        self.height, self.width = height, width
        hs, ws = cnn_sides(height), cnn_sides(width)
        self.pad = (0, ws[0] - width, 0, hs[0] - height)
        chans = [channels, depth, 2 * depth, 4 * depth, 8 * depth]
        layers: list[nn.Module] = []
        for i in range(4):
            layers += [nn.Conv2d(chans[i], chans[i + 1], 4, 2), nn.ELU()]
        self.net = nn.Sequential(*layers, nn.Flatten())
        self.out_dim = 8 * depth * hs[-1] * ws[-1]

    def forward(self, image: Tensor) -> Tensor:
        lead = image.shape[:-3]
        x = image_to_float(image.reshape(-1, *image.shape[-3:]))
        if any(self.pad):
            x = F.pad(x, self.pad)
        return self.net(x).reshape(*lead, self.out_dim)


class DenseEncoder(nn.Module):
    """MLP over a categorical grid (multi-hot) or a float vector/scalar field, flattened."""

    def __init__(self, field: FieldSpec, config: ModelConfig) -> None:
        super().__init__()
        self.kind = field.kind
        self.ndim = len(field.shape)
        if field.kind == "categorical":
            assert field.classes is not None
            self.total = sum(field.classes)
            self.register_buffer("offsets", class_offsets(field.classes), persistent=False)
            in_dim = math.prod(field.shape[:-1]) * self.total
        else:
            in_dim = math.prod(field.shape)
        self.net = mlp(in_dim, config.dense_embed, config.dense_hidden, config.encoder_layers,
                       config.layer_norm, out_act=True)
        self.out_dim = config.dense_embed

    def forward(self, x: Tensor) -> Tensor:
        lead = x.shape[: x.dim() - self.ndim]
        if self.kind == "categorical":
            x = onehot_grid(x, self.offsets, self.total)
        return self.net(x.float().reshape(*lead, -1))


class MultiEncoder(nn.Module):
    """One encoder per input field; the embedding is their concatenation (fields in name order)."""

    def __init__(self, fields: dict[str, FieldSpec], config: ModelConfig) -> None:
        super().__init__()
        self.encoders = nn.ModuleDict({
            name: ImageEncoder(field, config.cnn_depth) if field.kind == "image" else DenseEncoder(field, config)
            for name, field in fields.items()
        })
        self.out_dim = sum(enc.out_dim for enc in self.encoders.values())

    def forward(self, obs: dict[str, Tensor]) -> Tensor:
        """obs: name -> [*B, *shape] raw tensors (uint8 images and grids); returns [*B, out_dim]."""
        return torch.cat([enc(obs[name]) for name, enc in self.encoders.items()], -1)
