"""Typed configuration: dataclasses with defaults, YAML presets merged in order, `key=value` overrides.

Each part of dreamstream declares its settings as a dataclass beside the code that reads them; each
command nests the sections it reads (dreamstream.settings). Nothing here knows about those parts: this
module only turns nested dicts into dataclasses, and says clearly which key is wrong and what was
probably meant.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from dreamstream.errors import UserError

T = TypeVar("T")

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


class ConfigError(UserError, ValueError):
    """A configuration key or value that does not fit the typed config."""


def _closest(name: str, choices: typing.Iterable[str]) -> str:
    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check/convert one value against a type hint; dataclass hints recurse."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping of settings, got {value!r}")
        return from_dict(hint, value, where)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is typing.Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            hint_text = _closest(str(value), map(str, allowed))
            raise ConfigError(f"{where}: {value!r} is not one of {list(allowed)}{hint_text}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(hint)
        item = args[0] if args else Any
        items = [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is str and isinstance(value, str):
        return value
    raise ConfigError(f"{where}: expected {getattr(hint, '__name__', hint)}, got {value!r}")


def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build dataclass `cls` from a nested dict; unknown keys and wrong types raise ConfigError."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else key
        if key not in names:
            raise ConfigError(f"unknown config key {path!r}{_closest(key, names)}")
        kwargs[key] = _coerce(value, hints[key], path)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:  # a dataclass's own range checks (__post_init__)
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{where or cls.__name__}: {exc}") from exc


def to_dict(config: Any) -> dict[str, Any]:
    """The plain nested dict of a config (for logging as MLflow params or writing to YAML)."""
    return dataclasses.asdict(config)


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge `update` into a copy of `base` (mappings merge, everything else replaces)."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_override(text: str) -> dict[str, Any]:
    """`a.b.c=value` -> {"a": {"b": {"c": value}}}; the value is parsed as YAML (numbers, bools, lists)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value (for example train.batch_size=16)")
    key, raw = text.split("=", 1)
    value = yaml.safe_load(raw) if raw != "" else ""
    out: dict[str, Any] = {}
    node = out
    parts = key.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def preset_path(name: str, config_dir: Path = CONFIG_DIR) -> Path:
    """A preset name (`atari_pong`) or a path to a YAML file."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return path
    candidate = config_dir / f"{name}.yaml"
    if candidate.exists():
        return candidate
    known = sorted(p.stem for p in config_dir.glob("*.yaml"))
    raise ConfigError(f"unknown preset {name!r}{_closest(name, known)}; presets in {config_dir}: {known}")


def read_yaml(path: Path) -> dict[str, Any]:
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


INHERIT = "inherit"


def read_preset(name: str, config_dir: Path = CONFIG_DIR, _seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """A preset's settings: the presets it names under `inherit:` first (in order), then its own keys."""
    path = preset_path(name, config_dir)
    if path.stem in _seen:
        raise ConfigError(f"{path}: presets inherit from each other in a cycle: {' -> '.join((*_seen, path.stem))}")
    try:
        own = read_yaml(path)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    parents = own.pop(INHERIT, [])
    if isinstance(parents, str):
        parents = [parents]
    data: dict[str, Any] = {}
    for parent in parents:
        data = merge(data, read_preset(parent, config_dir, (*_seen, path.stem)))
    return merge(data, own)


def load(cls: type[T], presets: typing.Sequence[str] = (), overrides: typing.Sequence[str] = ()) -> T:
    """Defaults of `cls`, then each preset in order, then each `key=value` override."""
    data: dict[str, Any] = {}
    for name in presets:
        data = merge(data, read_preset(name))
    for text in overrides:
        data = merge(data, parse_override(text))
    return from_dict(cls, data)
