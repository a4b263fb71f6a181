"""One training step of the agent: four AdamW optimisers, clipping, autocast, optional torch.compile.

    metrics, state = learner.train_step(batch, state)      # batch: dict of [T, B, ...] tensors

Each of the four losses reaches only its own part's parameters (imagination runs with the world model
frozen, the critic and probe read detached features), so one backward pass of their sum trains all parts.
Metrics stay tensors; `dreamstream.train.loop.metrics.metrics_to_floats` syncs once for logging.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from dreamstream.datasets.loader.batch import to_device
from dreamstream.train.model.agent import Agent
from dreamstream.train.model.batch import check_batch
from dreamstream.train.model.config import OptimConfig
from dreamstream.train.model.rssm import RSSMState
from dreamstream.train.runtime import default_device


def resolve_precision(precision: str, device: torch.device) -> str:
    """`auto` -> bf16 on a CUDA device that supports it, else fp32."""
    if precision != "auto":
        return precision
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


class Learner:
    """Owns the agent's optimisers and performs training steps; `state_dict` is what a checkpoint needs."""

    def __init__(self, agent: Agent, config: OptimConfig, device: torch.device | str | None = None) -> None:
        self.device = torch.device(device) if device is not None else default_device()
        self.agent = agent.to(self.device)
        self.config = config
        self.precision = resolve_precision(config.precision, self.device)
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"optim.precision {config.precision!r} is not one of auto, fp32, bf16, fp16")
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")

        def adam(module: nn.Module, lr: float) -> torch.optim.AdamW:
            return torch.optim.AdamW(module.parameters(), lr=lr, eps=config.eps, weight_decay=config.weight_decay,
                                     fused=self.device.type == "cuda" or None)

        self.groups: dict[str, tuple[nn.Module, torch.optim.Optimizer, float]] = {
            "model": (agent.wm, adam(agent.wm, config.lr_model), config.grad_clip),
            "actor": (agent.actor, adam(agent.actor, config.lr_actor), config.grad_clip_ac),
            "critic": (agent.critic, adam(agent.critic, config.lr_critic), config.grad_clip_ac),
        }
        if agent.probe is not None:
            self.groups["probe"] = (agent.probe, adam(agent.probe, config.lr_probe), config.grad_clip)
        self.fields = agent.input_fields
        self.step = 0
        if config.compile:
            agent.compile()

    def initial_state(self, batch_size: int) -> RSSMState:
        """The zero state to start a stream of batches with."""
        return self.agent.initial_state(batch_size, self.device)

    def train_step(self, batch: dict[str, Tensor], state: RSSMState | None = None
                   ) -> tuple[dict[str, Tensor], RSSMState]:
        """One gradient step of every part on a [T, B] batch; returns (metrics as tensors, state for the next batch)."""
        _, batch_size = check_batch(batch, self.agent.spec, self.fields)
        batch = to_device(batch, self.device)
        if state is None:
            state = self.initial_state(batch_size)
        if self.step % self.agent.config.target_interval == 0:
            self.agent.update_target()
        self.agent.train()

        with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                            enabled=self.autocast_dtype is not None):
            losses, metrics, new_state = self.agent.losses(batch, state)

        for _, opt, _ in self.groups.values():
            opt.zero_grad(set_to_none=True)
        # Each loss reaches only its own part's parameters (see Agent.losses), so one backward pass serves all.
        self.scaler.scale(sum(losses.values())).backward()

        for name, (module, opt, clip) in self.groups.items():
            self.scaler.unscale_(opt)
            metrics[f"grad_norm/{name}"] = nn.utils.clip_grad_norm_(module.parameters(), clip)
        for _, opt, _ in self.groups.values():
            self.scaler.step(opt)
        self.scaler.update()
        self.step += 1
        return metrics, new_state

    def state_dict(self) -> dict[str, Any]:
        """Agent weights, optimiser and scaler states, step count (all loadable with weights_only=True)."""
        return {
            "agent": self.agent.state_dict(),
            "optimizers": {name: opt.state_dict() for name, (_, opt, _) in self.groups.items()},
            "scaler": self.scaler.state_dict(),
            "step": self.step,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume exactly where `state_dict` was taken."""
        self.agent.load_state_dict(state["agent"])
        for name, (_, opt, _) in self.groups.items():
            opt.load_state_dict(state["optimizers"][name])
        self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
