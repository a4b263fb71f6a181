"""The map probe (PyDreamer): how much of the map do the model's features know?

A separate MLP predicts the categorical `map` field from detached features, with its own optimiser, so it
measures the representation without shaping it. Accuracy is reported per cell channel and per whole cell.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dreamstream.datasets.spec import FieldSpec
from dreamstream.train.config import ModelConfig
from dreamstream.train.decoders import CategoricalDecoder


class MapProbe(nn.Module):
    """features [*B, F] (detached here) -> map logits; loss = cross-entropy summed over the map."""

    def __init__(self, field: FieldSpec, config: ModelConfig) -> None:
        super().__init__()
        self.decoder = CategoricalDecoder(field, config.feature_size, config.probe_hidden, config.probe_layers,
                                          config.layer_norm)

    def forward(self, features: Tensor, target: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        features = features.detach()
        loss = self.decoder.loss(features, target).mean()
        with torch.no_grad():
            pred = self.decoder.predict(self.decoder(features))
            correct = pred == target.long()
            metrics = {
                "loss/probe": loss.detach(),
                "probe/map_acc": correct.float().mean(),
                "probe/map_cell_acc": correct.all(-1).float().mean(),
            }
        return loss, metrics
