"""Settings composed at the edge: each command loads the sections it declares, from presets shared by all."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from dreamstream import smoke
from dreamstream.collect.command import CollectSettings
from dreamstream.errors import UserError
from dreamstream.settings import SECTIONS, load_settings
from dreamstream.train.loop.settings import TrainSettings


def names(sections: type) -> list[str]:
    return [f.name for f in dataclasses.fields(sections)]


def test_sections_are_what_training_reads_and_collect_reads_some_of_them():
    assert names(TrainSettings) == list(SECTIONS)
    assert set(names(CollectSettings)) == {"env", "collect", "data"}


def test_collect_takes_its_sections_of_a_preset_and_leaves_the_others(monkeypatch):
    monkeypatch.delenv(smoke.ENV_VAR, raising=False)
    collect, preset = load_settings(CollectSettings, "atari_pong", overrides=["data.chunk_steps=7"],
                                    values={"collect": {"workers": 3}})
    train, _ = load_settings(TrainSettings, "atari_pong")
    assert preset == "atari_pong" and collect.env == train.env  # the preset's model/train sections are left alone
    assert collect.data.chunk_steps == 7 and collect.collect.workers == 3


def test_a_set_for_a_section_the_command_does_not_read_is_an_error():
    with pytest.raises(UserError, match=r"--set model.deter=3: this command does not read the 'model' section "
                                        r"\(it reads env, collect, data\)"):
        load_settings(CollectSettings, "atari_pong", overrides=["model.deter=3"])
    train, _ = load_settings(TrainSettings, "atari_pong", overrides=["model.deter=3"])
    assert train.model.deter == 3


def test_an_unknown_section_or_key_is_named_for_every_command():
    for sections in (CollectSettings, TrainSettings):
        with pytest.raises(UserError, match=r"unknown config key 'colect' \(did you mean 'collect'\?\)"):
            load_settings(sections, "minigrid_empty", overrides=["colect.steps=5"])
        with pytest.raises(UserError, match=r"unknown config key 'data.chunk_step' \(did you mean 'chunk_steps'\?\)"):
            load_settings(sections, "minigrid_empty", overrides=["data.chunk_step=5"])


def test_smoke_caps_the_sections_a_command_reads(monkeypatch):
    monkeypatch.setenv(smoke.ENV_VAR, "1")
    settings, _ = load_settings(CollectSettings, "minigrid_empty")
    caps = smoke.settings_caps()
    assert settings.collect.steps == caps["collect"]["steps"]
    assert settings.data.chunk_steps == caps["data"]["chunk_steps"]


def test_the_collect_command_imports_no_trainer_code():
    code = (
        "import sys\n"
        "from dreamstream.collect.command import CollectSettings, add_arguments, run\n"
        "from dreamstream.collect.collector import Collector\n"
        "from dreamstream.settings import load_settings\n"
        "load_settings(CollectSettings, 'atari_pong', overrides=['data.chunk_steps=50'])\n"
        "print(sorted(m for m in sys.modules if m.startswith('dreamstream.train')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]", result.stdout
