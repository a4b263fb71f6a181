"""Typed configuration: presets merge in order, overrides parse, mistakes name the key and the likely fix."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from dreamstream import config
from dreamstream.config import ConfigError


@dataclass
class Inner:
    size: int = 4
    rate: float = 0.5
    mode: Literal["fast", "exact"] = "fast"
    tags: list[str] = field(default_factory=list)
    limit: int | None = None


@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    name: str = "x"
    verbose: bool = False


def test_presets_merge_in_order_then_overrides(tmp_path):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("inner: {size: 8, rate: 1}\nname: first\n")
    second.write_text("inner: {size: 16}\n")
    loaded = config.load(Outer, [str(first), str(second)], ["inner.tags=[a, b]", "verbose=true", "inner.limit=3"])
    assert loaded.inner == Inner(size=16, rate=1.0, mode="fast", tags=["a", "b"], limit=3)
    assert loaded.name == "first" and loaded.verbose is True
    assert isinstance(loaded.inner.rate, float)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("inner.sise=3", r"unknown config key 'inner.sise' \(did you mean 'size'\?\)"),
        ("innr.size=3", r"unknown config key 'innr' \(did you mean 'inner'\?\)"),
        ("inner.size=big", r"inner.size: expected int, got 'big'"),
        ("inner.mode=fats", r"inner.mode: 'fats' is not one of \['fast', 'exact'\] \(did you mean 'fast'\?\)"),
        ("verbose=3", r"verbose: expected true/false, got 3"),
        ("inner", r"must look like key=value"),
    ],
)
def test_mistakes_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        config.load(Outer, [], [override])


def test_unknown_preset_suggests_the_closest(tmp_path):
    (tmp_path / "minigrid_empty.yaml").write_text("{}")
    with pytest.raises(ConfigError, match=r"unknown preset 'minigrid_emty' \(did you mean 'minigrid_empty'\?\)"):
        config.preset_path("minigrid_emty", config_dir=tmp_path)


def test_every_shipped_preset_loads_into_settings():
    from dreamstream.train.loop.settings import TrainSettings

    presets = sorted(p.stem for p in config.CONFIG_DIR.glob("*.yaml"))
    assert "minigrid_empty" in presets and "atari_pong" in presets
    for name in presets:
        settings = config.load(TrainSettings, [name])
        assert settings.env.id, name


def test_presets_inherit_in_order_and_cycles_are_named(tmp_path):
    (tmp_path / "base.yaml").write_text("inner: {size: 8, rate: 2}\nname: base\n")
    (tmp_path / "child.yaml").write_text("inherit: [base]\ninner: {size: 16}\n")
    data = config.read_preset("child", config_dir=tmp_path)
    assert config.from_dict(Outer, data).inner == Inner(size=16, rate=2.0)
    (tmp_path / "base.yaml").write_text("inherit: child\n")
    with pytest.raises(ConfigError, match="cycle: child -> base -> child"):
        config.read_preset("child", config_dir=tmp_path)
