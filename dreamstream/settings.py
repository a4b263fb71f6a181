"""A command's settings: YAML presets, then `--set key=value` overrides, then flag values, in that order.

Each command declares the sections it reads as a dataclass of sections (`collect: CollectConfig`, ...;
each section is declared beside the code that reads it) and passes that class here, so a command
imports the configs of its own parts only: `dreamstream collect` never imports the trainer's. Presets
are shared by every command and may hold any section in SECTIONS; a command reads the ones it declares
and leaves the others alone. A `--set` is aimed at one command, so one for a section that command
does not read is an error; within a section it reads, an unknown or mistyped key is an error that names
it (dreamstream.config).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, TypeVar

from dreamstream import config, smoke
from dreamstream.errors import UserError

T = TypeVar("T")

SECTIONS = ("env", "collect", "data", "loader", "model", "optim", "train")
"""Every section a preset may hold; training reads them all (dreamstream.train.loop.settings)."""


def settings_from_dict(sections: type[T], data: dict[str, Any]) -> T:
    """The `sections` dataclass filled from a merged dict; in a smoke run (DREAMSTREAM_SMOKE), capped by
    configs/smoke.yaml. Sections of SECTIONS that `sections` does not declare are left out; any other
    unknown key is an error."""
    names = {f.name for f in dataclasses.fields(sections)}
    read = {key: value for key, value in data.items() if key in names or key not in SECTIONS}
    settings = config.from_dict(sections, read)
    if smoke.enabled():
        smoke.cap(settings, {key: caps for key, caps in smoke.settings_caps().items() if key in names})
    return settings


def load_settings(sections: type[T], env: str, presets: Sequence[str] = (), overrides: Sequence[str] = (),
                  values: dict[str, Any] | None = None) -> tuple[T, str]:
    """-> (settings of type `sections`, preset name or ""). `env` is a preset (configs/NAME.yaml), a YAML
    file, or a gymnasium id (then the defaults apply with `env.id` set); `presets` stack on top in order,
    then `overrides` (`key=value` text), then `values` (a nested dict: the command-line flags)."""
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
            override = config.parse_override(text)
            _check_read(sections, override, text)
            data = config.merge(data, override)
        return settings_from_dict(sections, config.merge(data, values or {})), preset
    except config.ConfigError as exc:
        raise UserError(f"{where}: {exc}") from exc


def _check_read(sections: type, override: dict[str, Any], text: str) -> None:
    """A `--set` for a known section that `sections` leaves out would change nothing: say so instead."""
    names = [f.name for f in dataclasses.fields(sections)]
    for key in override:
        if key in SECTIONS and key not in names:
            raise config.ConfigError(f"--set {text}: this command does not read the {key!r} section "
                                     f"(it reads {', '.join(names)})")
