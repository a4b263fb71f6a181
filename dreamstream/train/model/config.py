"""Typed settings of the DreamerV2 agent: the model (`model:` section) and its optimisers (`optim:` section).

Defaults are PyDreamer's `defaults` merged with its `atari` preset (jurgisp/pydreamer config/defaults.yaml):
deter 1024, 32x32 categorical latents, hidden 1000, CNN depth 48, KL weight 0.1 with balance 0.8,
gamma 0.99, lambda 0.95, entropy 1e-3, horizon 15, Adam(W) lr 3e-4 / 1e-4 / 1e-4, eps 1e-5, clip 200.
Every shape that depends on the data (image size, grid classes, action count) comes from the dataset spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class ModelConfig:
    """World model, actor-critic and map-probe architecture plus the weights of their losses."""

    # --- RSSM ---
    deter: int = 1024
    """Size of the deterministic GRU state h (PyDreamer 2048 by default, 1024 in its Atari preset)."""
    stoch: int = 32
    """Number of stochastic latent variables z."""
    classes: int = 32
    """Classes per categorical latent (32x32 = DreamerV2). 0 selects diagonal Gaussian latents of size `stoch`."""
    hidden: int = 1000
    """Width of the RSSM's input, prior and posterior layers."""
    gru: Literal["gru", "norm_gru"] = "gru"
    """`gru`: torch's GRUCell (PyDreamer's default); `norm_gru`: DreamerV2's layer-normed GRU with late reset."""
    layer_norm: bool = True
    """LayerNorm in the RSSM and every MLP (DreamerV2/PyDreamer both use it)."""

    # --- Observation encoders and decoders ---
    cnn_depth: int = 48
    """Channels of the first CNN layer for `image` fields (doubling over four stride-2 layers)."""
    dense_hidden: int = 400
    """Width of the MLPs that encode/decode `categorical`, `vector` and `scalar` fields."""
    dense_embed: int = 256
    """Output size of each dense field encoder (concatenated with the CNN's output)."""
    encoder_layers: int = 3
    """Hidden layers of the dense field encoders (PyDreamer MiniGrid: 3)."""
    decoder_layers: int = 2
    """Hidden layers of the dense field decoders (PyDreamer MiniGrid: 2)."""

    # --- Reward and termination heads ---
    head_layers: int = 4
    """Hidden layers of the reward and termination MLPs (width `dense_hidden`)."""
    reward_head: Literal["normal", "support", "twohot"] = "normal"
    """`normal`: unit-variance Gaussian (MSE); `support`: PyDreamer's categorical over `reward_support` (nearest
    value); `twohot`: DreamerV3's symlog two-hot over `twohot_bins` bins in [-twohot_range, twohot_range]."""
    reward_support: tuple[float, ...] = (-1.0, 0.0, 1.0)
    """Values of the `support` reward head, ascending (for Atari with clipped rewards: -1, 0, 1)."""
    twohot_bins: int = 255
    """Number of bins of the `twohot` reward head."""
    twohot_range: float = 20.0
    """The `twohot` bins span [-range, range] in symlog space."""

    # --- World-model loss ---
    kl_weight: float = 0.1
    """Weight of the KL term (PyDreamer Atari 0.1; 1.0 elsewhere)."""
    kl_balance: float = 0.8
    """Share of the KL gradient that trains the prior (0.5 = plain KL)."""
    iwae_samples: int = 1
    """Posterior samples per step; >1 trains on the importance-weighted bound (PyDreamer's IWAE option)."""
    image_weight: float = 1.0
    """Weight of each `image` reconstruction loss."""
    grid_weight: float = 1.0
    """Weight of each `categorical` reconstruction loss."""
    vector_weight: float = 1.0
    """Weight of each `vector`/`scalar` reconstruction loss."""
    reward_weight: float = 1.0
    """Weight of the reward loss."""
    terminal_weight: float = 1.0
    """Weight of the termination loss (trained on `is_terminal`, never `is_last`)."""

    # --- Actor-critic in imagination ---
    ac_hidden: int = 400
    """Width of the actor and critic MLPs."""
    ac_layers: int = 4
    """Hidden layers of the actor and critic MLPs."""
    imag_horizon: int = 15
    """Imagined steps from every posterior state."""
    gamma: float = 0.99
    """Discount (PyDreamer Atari 0.99; 0.995 by default)."""
    return_lambda: float = 0.95
    """Lambda of the lambda-return (PyDreamer lambda_gae)."""
    actor_entropy: float = 1e-3
    """Weight of the policy entropy bonus (PyDreamer Atari 1e-3; 3e-3 by default)."""
    actor_grad: Literal["auto", "reinforce", "dynamics"] = "auto"
    """Actor gradient: REINFORCE with the critic as baseline, or backprop through the learned dynamics.
    `auto`: reinforce for discrete actions, dynamics for continuous ones (DreamerV2's choice)."""
    continuous_dist: Literal["tanh_normal", "trunc_normal"] = "tanh_normal"
    """Actor distribution for continuous actions, squashed into the action Box."""
    target_interval: int = 100
    """Copy the critic into the target critic every this many training steps."""

    # --- Map probe ---
    map_probe: bool = True
    """Train a probe that predicts a categorical `map` field (when the spec has one) from detached features."""
    probe_hidden: int = 1024
    """Width of the map probe MLP (PyDreamer map_hidden_dim)."""
    probe_layers: int = 4
    """Hidden layers of the map probe MLP."""

    @property
    def stoch_size(self) -> int:
        """Width of the flat stochastic state."""
        return self.stoch * self.classes if self.classes else self.stoch

    @property
    def feature_size(self) -> int:
        """Width of the features [h, z] that every head reads."""
        return self.deter + self.stoch_size

    @classmethod
    def debug(cls) -> ModelConfig:
        """A small model for smoke runs and benchmarks on a CPU; the algorithm (horizon, losses) is unchanged."""
        return cls(deter=128, stoch=8, classes=8, hidden=128, cnn_depth=16, dense_hidden=128, dense_embed=64,
                   encoder_layers=2, decoder_layers=2, head_layers=2, ac_hidden=128, ac_layers=2,
                   probe_hidden=128, probe_layers=2)


@dataclass
class OptimConfig:
    """Optimisers (AdamW, one per part, as in PyDreamer), gradient clipping, precision and compilation."""

    lr_model: float = 3e-4
    """Learning rate of the world model (encoders, RSSM, decoders, reward and termination heads)."""
    lr_actor: float = 1e-4
    """Learning rate of the actor."""
    lr_critic: float = 1e-4
    """Learning rate of the critic."""
    lr_probe: float = 3e-4
    """Learning rate of the map probe."""
    eps: float = 1e-5
    """Adam epsilon."""
    weight_decay: float = 0.01
    """AdamW weight decay (PyDreamer keeps torch's AdamW default)."""
    grad_clip: float = 200.0
    """Gradient-norm clip of the world model and the probe."""
    grad_clip_ac: float = 200.0
    """Gradient-norm clip of the actor and of the critic."""
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    """Autocast precision. `auto`: bf16 on a CUDA device that supports it, else fp32. fp16 uses a GradScaler
    (DreamerV2 on Enduro did not learn at fp16: compare with fp32 before trusting it)."""
    compile: bool = False
    """torch.compile the loss computation (helps on a GPU; the first steps then take minutes to compile)."""
