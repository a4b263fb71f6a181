"""Fixtures for the loader tests: a small spec and a corpus written like collectors write."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces
from loader_helpers import Corpus, write_corpus

from dreamstream.datasets import EpisodeSpec, spec_from_spaces


@pytest.fixture
def spec() -> EpisodeSpec:
    observation_space = spaces.Dict(image=spaces.Box(0, 255, (8, 8, 3), np.uint8),
                                    vector=spaces.Box(-1, 1, (3,), np.float32))
    return spec_from_spaces(observation_space, spaces.Discrete(5))


@pytest.fixture
def corpus(tmp_path, spec) -> Corpus:
    """24 episodes (5-90 steps, 16-step chunks) in about 30 shards on local disk."""
    lengths = [int(n) for n in np.random.default_rng(7).integers(5, 90, 24)]
    return write_corpus(str(tmp_path / "corpus"), spec, lengths)
