"""The root configuration: one typed section per part of dreamstream, each declared beside its code.

Presets in configs/ and `--set section.key=value` overrides fill it (see dreamstream.config).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dreamstream import config, smoke
from dreamstream.collect.config import CollectConfig, EnvConfig
from dreamstream.datasets.loader.config import LoaderConfig
from dreamstream.datasets.writer import WriterConfig
from dreamstream.errors import UserError
from dreamstream.train.loop.config import TrainConfig
from dreamstream.train.model.config import ModelConfig, OptimConfig


@dataclass
class Settings:
    """Everything a dreamstream command can be configured with."""

    env: EnvConfig = field(default_factory=EnvConfig)
    collect: CollectConfig = field(default_factory=CollectConfig)
    data: WriterConfig = field(default_factory=WriterConfig)
    loader: LoaderConfig = field(default_factory=LoaderConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def settings_from_dict(data: dict[str, Any]) -> Settings:
    """The typed settings of a merged dict; in a smoke run (DREAMSTREAM_SMOKE), capped by configs/smoke.yaml."""
    settings = config.from_dict(Settings, data)
    if smoke.enabled():
        smoke.cap(settings, smoke.settings_caps())
    return settings


def load_settings(env: str, presets: Sequence[str] = (), overrides: Sequence[str] = (),
                  values: dict[str, Any] | None = None) -> tuple[Settings, str]:
    """-> (Settings, preset name or ""). `env` is a preset (configs/NAME.yaml), a YAML file, or a gymnasium
    id (then the defaults apply with `env.id` set); `presets` stack on top in order, then `overrides`
    (`key=value` text), then `values` (a nested dict, for command-line flags)."""
    try:
        path = config.preset_path(env)
    except config.ConfigError:
        if env.endswith((".yaml", ".yml")):
            raise UserError(f"preset file {env!r} does not exist") from None
        data: dict[str, Any] = {"env": {"id": env}}
        preset = ""
    else:
        preset = path.stem
        data = config.read_preset(str(path))
    where = f"preset {preset!r}" if preset else f"env {env!r}"
    try:
        for name in presets:
            data = config.merge(data, config.read_preset(name))
        for text in overrides:
            data = config.merge(data, config.parse_override(text))
        return settings_from_dict(config.merge(data, values or {})), preset
    except config.ConfigError as exc:
        raise UserError(f"{where}: {exc}") from exc
