"""Specs are derived from gymnasium spaces and survive the card's JSON round trip."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

from dreamstream.datasets import ActionSpec, EpisodeSpec, FieldSpec, SpecError, spec_from_spaces
from dreamstream.datasets.spec import spec_difference


def test_kinds_are_derived_from_spaces():
    obs = spaces.Dict(
        image=spaces.Box(0, 255, (64, 48, 3), np.uint8),
        gray=spaces.Box(0, 255, (32, 32, 1), np.uint8),
        vector=spaces.Box(-1, 1, (3,), np.float64),
        grid=spaces.MultiDiscrete(np.broadcast_to([11, 6, 3], (5, 9, 3))),
        direction=spaces.Discrete(4),
    )
    spec = spec_from_spaces(obs, spaces.Box(-2, 2, (2,), np.float32))
    assert spec.observations["image"] == FieldSpec((64, 48, 3), "uint8", "image")
    assert spec.observations["gray"].kind == "image"
    assert spec.observations["vector"] == FieldSpec((3,), "float32", "vector")
    assert spec.observations["grid"] == FieldSpec((5, 9, 3), "uint8", "categorical", (11, 6, 3))
    assert spec.observations["direction"] == FieldSpec((1,), "int64", "categorical", (4,))
    assert spec.action == ActionSpec("continuous", shape=(2,), low=(-2.0, -2.0), high=(2.0, 2.0))
    assert spec.fields["action"] == FieldSpec((2,), "float32", "vector")
    assert list(spec.fields)[-5:] == ["action", "reward", "is_first", "is_last", "is_terminal"]
    assert EpisodeSpec.from_json(spec.to_json()) == spec


def test_plain_observation_space_becomes_obs_and_discrete_action_is_an_index():
    spec = spec_from_spaces(spaces.Box(-1, 1, (4,), np.float32), spaces.Discrete(2))
    assert list(spec.observations) == ["obs"]
    assert spec.fields["action"] == FieldSpec((), "int64", "scalar")
    assert spec.action.size == 2


def test_bad_specs_are_refused_with_the_reason():
    with pytest.raises(SpecError, match="clash with reserved"):
        EpisodeSpec({"reward": FieldSpec((), "float32", "scalar")}, ActionSpec("discrete", n=2))
    with pytest.raises(SpecError, match="unknown field kind 'picture'"):
        FieldSpec((3,), "uint8", "picture")
    with pytest.raises(SpecError, match="one class count per channel"):
        FieldSpec((7, 7, 3), "uint8", "categorical", (11, 6))
    with pytest.raises(SpecError, match="unsupported action space"):
        spec_from_spaces(spaces.Box(0, 1, (1,)), spaces.MultiBinary(3))


def test_spec_difference_names_every_difference_and_is_empty_for_equal_specs():
    want = spec_from_spaces(spaces.Dict(grid=spaces.MultiDiscrete([[11, 6, 3]] * 2), x=spaces.Box(-1, 1, (3,))),
                            spaces.Discrete(7))
    got = spec_from_spaces(spaces.Dict(grid=spaces.MultiDiscrete([[11, 6, 4]] * 2), y=spaces.Box(-1, 1, (3,))),
                           spaces.Discrete(3))
    assert spec_difference(want, want) == ""
    assert spec_difference(want, got) == (
        "field 'grid' is categorical uint8 [2, 3] classes [11, 6, 4], not categorical uint8 [2, 3] classes "
        "[11, 6, 3]; no field 'x' (vector float32 [3]); extra field 'y' (vector float32 [3]); "
        "action {'kind': 'discrete', 'n': 3}, not "
        "{'kind': 'discrete', 'n': 7}")
