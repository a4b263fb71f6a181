"""Fixtures for the Minari tests: a private Minari datasets root (nothing is downloaded)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def minari_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """MINARI_DATASETS_PATH for this test: where Minari's load_dataset and the commands' defaults look."""
    root = tmp_path / "minari-datasets"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root
