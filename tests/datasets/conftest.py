"""Fixtures for the format tests: a spec with every field kind, and dataset roots on every store."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

from dreamstream.datasets import DatasetCard, EpisodeSpec, FieldSpec, spec_from_spaces


@pytest.fixture
def spec() -> EpisodeSpec:
    """Image, categorical grid, vector and scalar observations with a discrete action."""
    observation_space = spaces.Dict(
        image=spaces.Box(0, 255, (16, 16, 3), np.uint8),
        vector=spaces.Box(-1, 1, (5,), np.float32),
        speed=spaces.Box(-np.inf, np.inf, (), np.float32),
    )
    base = spec_from_spaces(observation_space, spaces.Discrete(7))
    grid = FieldSpec(shape=(7, 7, 3), dtype="uint8", kind="categorical", classes=(11, 6, 3))
    return EpisodeSpec(observations={**base.observations, "grid": grid}, action=base.action)


@pytest.fixture
def card(spec: EpisodeSpec) -> DatasetCard:
    return DatasetCard.create(spec, env_id="Test-v0", preset="test", description="format tests")


@pytest.fixture(params=["local", "file", "memory", "s3", "gcs"])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A fresh dataset root on each store: plain path, file://, memory://, S3 (moto), GCS (emulator)."""
    kind = request.param
    if kind == "local":
        return str(tmp_path / "ds")
    if kind == "file":
        return f"file://{tmp_path}/ds"
    if kind == "memory":
        return f"memory://ds-{request.node.name}"
    if kind == "s3":
        return request.getfixturevalue("s3_url") + "/ds"
    return request.getfixturevalue("gcs_url") + "/ds"
