"""Observation decoders, one per input field, each with its own loss (summed over the field's elements).

image: transposed CNN mirroring the encoder, mean-squared error on pixels in [-0.5, 0.5];
categorical: per-cell, per-channel softmax, cross-entropy; vector/scalar: MLP, mean-squared error.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dreamstream.datasets.spec import FieldSpec
from dreamstream.train.model.config import ModelConfig
from dreamstream.train.model.encoders import cnn_sides, image_to_float
from dreamstream.train.model.networks import mlp


class ImageDecoder(nn.Module):
    """features [*B, F] -> image mean [*B, H, W, C] (normalised), the exact mirror of ImageEncoder's sizes."""

    def __init__(self, field: FieldSpec, depth: int, in_dim: int) -> None:
        super().__init__()
        height, width, channels = field.shape
        self.shape = (height, width, channels)
        hs, ws = cnn_sides(height), cnn_sides(width)
        chans = [8 * depth, 4 * depth, 2 * depth, depth, channels]
        layers: list[nn.Module] = [nn.Linear(in_dim, chans[0] * hs[4] * ws[4]),
                                   nn.Unflatten(-1, (chans[0], hs[4], ws[4]))]
        for i in range(4):
            k = 3 - i  # from size index k+1 up to size index k
            pad = ((hs[k] - 4) % 2, (ws[k] - 4) % 2)
            layers.append(nn.ConvTranspose2d(chans[i], chans[i + 1], 4, 2, output_padding=pad))
            if i < 3:
                layers.append(nn.ELU())
        self.net = nn.Sequential(*layers)

    def forward(self, features: Tensor) -> Tensor:
        lead = features.shape[:-1]
        height, width, channels = self.shape
        x = self.net(features.reshape(-1, features.shape[-1]))[:, :, :height, :width]
        return x.permute(0, 2, 3, 1).reshape(*lead, height, width, channels)

    def loss(self, features: Tensor, target: Tensor) -> Tensor:
        """0.5 * squared error summed over pixels (a unit-variance Gaussian's NLL up to a constant): [*B]."""
        pred = self.forward(features).float()
        lead = target.shape[:-3]
        goal = image_to_float(target.reshape(-1, *self.shape)).permute(0, 2, 3, 1).reshape(*lead, *self.shape)
        return 0.5 * (pred - goal).square().sum((-1, -2, -3))

    def decode(self, features: Tensor) -> Tensor:
        """Predicted uint8 images, for dream videos."""
        return ((self.forward(features).float() + 0.5) * 255.0).clamp(0, 255).to(torch.uint8)


class CategoricalDecoder(nn.Module):
    """features [*B, F] -> logits [*B, *cells, sum(classes)]; one softmax per channel of each cell."""

    def __init__(self, field: FieldSpec, in_dim: int, hidden: int, layers: int, layer_norm: bool) -> None:
        super().__init__()
        assert field.classes is not None
        self.cells, self.classes = tuple(field.shape[:-1]), tuple(field.classes)
        self.net = mlp(in_dim, math.prod(self.cells) * sum(self.classes), hidden, layers, layer_norm)

    def forward(self, features: Tensor) -> Tensor:
        return self.net(features).unflatten(-1, (*self.cells, sum(self.classes))).float()

    def _log_probs(self, logits: Tensor) -> list[Tensor]:
        return [torch.log_softmax(part, -1) for part in logits.split(self.classes, -1)]

    def loss(self, features: Tensor, target: Tensor) -> Tensor:
        """Cross-entropy summed over cells and channels: [*B]."""
        logps = self._log_probs(self.forward(features))
        target = target.long()
        nll = sum(-lp.gather(-1, target[..., j : j + 1]).squeeze(-1) for j, lp in enumerate(logps))
        return nll.flatten(-len(self.cells)).sum(-1) if self.cells else nll

    def predict(self, logits: Tensor) -> Tensor:
        """Most likely class per channel: [*B, *cells, C] int64."""
        return torch.stack([part.argmax(-1) for part in logits.split(self.classes, -1)], -1)

    def decode(self, features: Tensor) -> Tensor:
        return self.predict(self.forward(features)).to(torch.uint8)


class VectorDecoder(nn.Module):
    """features [*B, F] -> mean [*B, *shape]; 0.5 * squared error summed over elements."""

    def __init__(self, field: FieldSpec, in_dim: int, hidden: int, layers: int, layer_norm: bool) -> None:
        super().__init__()
        self.shape = tuple(field.shape)
        self.net = mlp(in_dim, math.prod(self.shape), hidden, layers, layer_norm)

    def forward(self, features: Tensor) -> Tensor:
        out = self.net(features).float()
        return out.unflatten(-1, self.shape) if self.shape else out.squeeze(-1)

    def loss(self, features: Tensor, target: Tensor) -> Tensor:
        err = (self.forward(features) - target.float()).square()
        return 0.5 * (err.flatten(-len(self.shape)).sum(-1) if self.shape else err)

    def decode(self, features: Tensor) -> Tensor:
        return self.forward(features)


def make_decoder(field: FieldSpec, config: ModelConfig) -> nn.Module:
    """The decoder for one field kind (the kinds were checked by encoders.split_fields)."""
    if field.kind == "image":
        return ImageDecoder(field, config.cnn_depth, config.feature_size)
    if field.kind == "categorical":
        return CategoricalDecoder(field, config.feature_size, config.dense_hidden, config.decoder_layers,
                                  config.layer_norm)
    return VectorDecoder(field, config.feature_size, config.dense_hidden, config.decoder_layers, config.layer_norm)


def loss_weight(field: FieldSpec, config: ModelConfig) -> float:
    """The config weight of one field's reconstruction loss."""
    return {"image": config.image_weight, "categorical": config.grid_weight}.get(field.kind, config.vector_weight)
