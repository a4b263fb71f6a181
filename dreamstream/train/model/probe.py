"""The map probe (PyDreamer): how much of the map do the model's features know?

A separate MLP predicts the categorical `map` field from detached features, with its own optimiser, so it
measures the representation without shaping it. Accuracy is reported per cell channel and per whole cell.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dreamstream.datasets.spec import FieldSpec
from dreamstream.train.model.config import ModelConfig
from dreamstream.train.model.decoders import CategoricalDecoder
from dreamstream.train.model.functional import masked_mean


class MapProbe(nn.Module):
    """features [*B, F] (detached here) -> map logits; loss = cross-entropy summed over the map."""

    def __init__(self, field: FieldSpec, config: ModelConfig) -> None:
        super().__init__()
        self.decoder = CategoricalDecoder(field, config.feature_size, config.probe_hidden, config.probe_layers,
                                          config.layer_norm)

    def forward(self, features: Tensor, target: Tensor, weight: Tensor | None = None
                ) -> tuple[Tensor, dict[str, Tensor]]:
        """features [T, B, F], target [T, B, *map]; `weight` [T, B] (0 on padding rows) masks every mean."""
        features = features.detach()
        loss = masked_mean(self.decoder.loss(features, target), weight)
        with torch.no_grad():
            pred = self.decoder.predict(self.decoder(features))
            correct = pred == target.long()
            cells = correct.all(-1).float()
            cell_weight = None if weight is None else weight.reshape(*weight.shape, *[1] * (cells.dim() - 2))
            chan_weight = None if weight is None else weight.reshape(*weight.shape, *[1] * (correct.dim() - 2))
            metrics = {
                "loss/probe": loss.detach(),
                "probe/map_acc": masked_mean(correct.float(), chan_weight),
                "probe/map_cell_acc": masked_mean(cells, cell_weight),
            }
        return loss, metrics
