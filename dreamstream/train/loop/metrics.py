"""What every training metric means (for docs and MLflow), and how they reach a log with one device sync.

Keys are those `Learner.train_step` returns; `loss/<field>` exists once per observation field the model
reconstructs. A test checks that every key a step produces is explained here.
"""

from __future__ import annotations

import time

import torch
from torch import Tensor

METRICS: dict[str, str] = {
    "loss/<field>": "Reconstruction NLL of one observation field per step, summed over its elements "
                    "(0.5 squared error for images in [-0.5, 0.5] and vectors, cross-entropy for categorical).",
    "loss/reward": "Reward-head NLL per step (0.5 squared error, or cross-entropy for support/twohot heads).",
    "loss/terminal": "Termination-head binary cross-entropy against is_terminal (never is_last).",
    "loss/kl": "Exact KL(posterior || prior) per step, summed over latents (before kl_weight and balancing).",
    "loss/model": "The world-model loss that is optimised: reconstructions + kl_weight * balanced KL "
                  "(the IWAE bound when iwae_samples > 1), averaged over steps.",
    "entropy/prior": "Entropy of the prior p(z | h), summed over latents.",
    "entropy/post": "Entropy of the posterior q(z | h, x), summed over latents.",
    "loss/actor": "Actor loss: -(advantage * log-prob (reinforce) or lambda-return (dynamics) + entropy bonus), "
                  "weighted by the predicted probability that the imagined episode has not ended.",
    "loss/critic": "Critic loss: 0.5 squared error to the lambda-return, with the same weights.",
    "entropy/policy": "Entropy of the actor's action distribution on imagined states.",
    "value/mean": "Critic value averaged over imagined states.",
    "value/start": "Critic value of the real (posterior) states that imagination starts from.",
    "return/mean": "Lambda-return (computed with the target critic) averaged over imagined states.",
    "reward/imagined": "Predicted reward averaged over imagined transitions.",
    "cont/imagined": "Predicted continuation probability (1 - termination) averaged over imagined states.",
    "loss/probe": "Map-probe cross-entropy summed over the map (from detached features; trains only the probe).",
    "probe/map_acc": "Share of map cell channels the probe predicts right.",
    "probe/map_cell_acc": "Share of map cells whose every channel the probe predicts right.",
    "grad_norm/model": "World-model gradient norm before clipping (optim.grad_clip).",
    "grad_norm/actor": "Actor gradient norm before clipping (optim.grad_clip_ac).",
    "grad_norm/critic": "Critic gradient norm before clipping (optim.grad_clip_ac).",
    "grad_norm/probe": "Map-probe gradient norm before clipping (optim.grad_clip).",
}


def describe(key: str, fields: list[str]) -> str | None:
    """The explanation of a metric key, None when it is undocumented."""
    if key in METRICS:
        return METRICS[key]
    if key.startswith("loss/") and key[len("loss/"):] in fields:
        return METRICS["loss/<field>"]
    return None


def metrics_to_floats(metrics: dict[str, Tensor]) -> dict[str, float]:
    """One device sync for a whole metrics dict (for logging): stacked on the device, copied once."""
    if not metrics:
        return {}
    values = torch.stack([v.detach().float().reshape(()) for v in metrics.values()]).tolist()
    return dict(zip(metrics, values, strict=True))


class IntervalMetrics:
    """Sums metric tensors between logs without syncing the device; `take` averages and syncs once."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0
        self.started = time.perf_counter()

    def add(self, metrics: dict[str, torch.Tensor]) -> None:
        for key, value in metrics.items():
            value = value.detach().float()
            self.sums[key] = self.sums[key] + value if key in self.sums else value
        self.count += 1

    def take(self) -> dict[str, float]:
        elapsed = time.perf_counter() - self.started
        out = {k: v / self.count for k, v in metrics_to_floats(self.sums).items()} if self.count else {}
        out["perf/grad_steps_per_s"] = self.count / max(elapsed, 1e-9)
        self.sums, self.count, self.started = {}, 0, time.perf_counter()
        return out
