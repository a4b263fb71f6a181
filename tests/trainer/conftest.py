"""Fixtures for end-to-end trainer runs: a small collected MiniGrid dataset and a private MLflow store."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def minigrid_data(tmp_path_factory, dreamstream) -> str:
    """2,000 random-policy steps of MiniGrid-Empty-5x5 (with the map probe target)."""
    root = tmp_path_factory.mktemp("minigrid") / "data"
    dreamstream("collect", "--env", "minigrid_empty", "--out", str(root), "--steps", "2000", "--no-progress")
    return str(root)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "run"
