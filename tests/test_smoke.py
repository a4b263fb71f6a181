"""DREAMSTREAM_SMOKE caps settings and benchmark sizes, and the command-line budgets compose."""

from __future__ import annotations

import argparse

import pytest

from dreamstream import smoke
from dreamstream.collect import command as collect_command
from dreamstream.settings import load_settings
from dreamstream.train.loop.settings import TrainSettings


def test_smoke_caps_numbers_fills_unset_budgets_and_keeps_smaller_values(monkeypatch):
    monkeypatch.setenv(smoke.ENV_VAR, "1")
    caps = smoke.settings_caps()
    settings, _ = load_settings(TrainSettings, "atari_pong",
                                overrides=["train.eval_interval=0", "loader.batch_size=1"])
    assert settings.train.steps == caps["train"]["steps"] and settings.model.deter == caps["model"]["deter"]
    assert settings.train.eval_interval == 0, "0 (never) is below every cap and stays"
    assert settings.loader.batch_size == 1, "a value below its cap stays"
    assert settings.collect.steps == caps["collect"]["steps"], "an unset budget takes the cap"


def test_without_smoke_nothing_is_capped(monkeypatch):
    monkeypatch.delenv(smoke.ENV_VAR, raising=False)
    settings, _ = load_settings(TrainSettings, "atari_pong")
    assert settings.model.deter > smoke.settings_caps()["model"]["deter"] and settings.collect.steps is None


@pytest.mark.parametrize("value", ["0", "", "false"])
def test_smoke_off_values(monkeypatch, value):
    monkeypatch.setenv(smoke.ENV_VAR, value)
    assert not smoke.enabled()


def test_cap_on_a_namespace():
    args = argparse.Namespace(frames=30_000, repeats=4, steps=None, workers="1,2")
    smoke.cap(args, {"frames": 600, "repeats": 1, "steps": 3, "workers": "1"})
    assert vars(args) == {"frames": 600, "repeats": 1, "steps": 3, "workers": "1"}


@pytest.mark.parametrize(("flags", "budget"), [
    (["--steps", "20000", "--episodes", "300"], {"steps": None, "episodes": 300}),
    (["--episodes", "300", "--steps", "50"], {"steps": 50, "episodes": None}),
    ([], None),
])
def test_the_last_budget_flag_wins(flags, budget):
    """The Makefile passes --steps; `SET="--episodes 300"` after it must replace it, not clash."""
    parser = argparse.ArgumentParser()
    collect_command.add_arguments(parser)
    args = parser.parse_args(["--env", "minigrid_empty", "--out", "x", *flags])
    assert args.budget == budget
