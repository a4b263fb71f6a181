"""TrainSettings: every section a training run reads (all of dreamstream.settings.SECTIONS).

The online trainer starts collectors (env, collect, data), streams batches (loader) and trains the model
(model, optim) for a run (train); a run folder's run.json stores these settings for --resume.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dreamstream.collect.config import CollectConfig, EnvConfig
from dreamstream.datasets.loader.config import LoaderConfig
from dreamstream.datasets.writer import WriterConfig
from dreamstream.train.loop.config import TrainConfig
from dreamstream.train.model.config import ModelConfig, OptimConfig


@dataclass
class TrainSettings:
    """Everything `dreamstream train` (and `dreamstream bench train`) is configured with."""

    env: EnvConfig = field(default_factory=EnvConfig)
    collect: CollectConfig = field(default_factory=CollectConfig)
    data: WriterConfig = field(default_factory=WriterConfig)
    loader: LoaderConfig = field(default_factory=LoaderConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
