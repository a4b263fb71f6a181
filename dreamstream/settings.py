"""The root configuration: one typed section per part of dreamstream, each declared beside its code.

Presets in configs/ and `--set section.key=value` overrides fill it (see dreamstream.config).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dreamstream.collect.config import CollectConfig, EnvConfig
from dreamstream.datasets.loader.config import LoaderConfig
from dreamstream.datasets.writer import WriterConfig
from dreamstream.train.config import ModelConfig, OptimConfig


@dataclass
class Settings:
    """Everything a dreamstream command can be configured with."""

    env: EnvConfig = field(default_factory=EnvConfig)
    collect: CollectConfig = field(default_factory=CollectConfig)
    data: WriterConfig = field(default_factory=WriterConfig)
    loader: LoaderConfig = field(default_factory=LoaderConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
