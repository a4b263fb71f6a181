"""Fixtures for the pipeline tests: datasets whose every number the test knows, and one Dask cluster.

Episodes are made by `make_episode` with a chosen policy, version, length, return and outcome; the test
keeps the arrays, so statistics can be computed independently of dreamstream's code.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from gymnasium import spaces
from pipeline_helpers import N_ACTIONS

from dreamstream.datasets import DatasetCard, EpisodeSpec, FieldSpec, spec_from_spaces
from dreamstream.pipelines.cluster import ClusterConfig, Runner, open_runner


@pytest.fixture(scope="session")
def spec() -> EpisodeSpec:
    """A small image, a vector, a categorical grid; 5 discrete actions."""
    observation_space = spaces.Dict(
        image=spaces.Box(0, 255, (8, 8, 3), np.uint8),
        vector=spaces.Box(-1, 1, (3,), np.float32),
    )
    base = spec_from_spaces(observation_space, spaces.Discrete(N_ACTIONS))
    grid = FieldSpec(shape=(4, 4, 2), dtype="uint8", kind="categorical", classes=(6, 3))
    return EpisodeSpec(observations={**base.observations, "grid": grid}, action=base.action)


@pytest.fixture(scope="session")
def card(spec: EpisodeSpec) -> DatasetCard:
    return DatasetCard.create(spec, env_id="Test-v0", preset="test", description="pipeline tests")


@pytest.fixture(scope="session")
def cluster(s3_endpoint: str) -> Iterator[Runner]:
    """One LocalCluster (2 worker processes x 1 thread) for every pipeline test.

    Started after the S3 fixture has set AWS_* / FSSPEC_S3_* in the environment, which the spawned
    workers inherit: that is how they reach the moto server, with nothing passed in the tasks.
    """
    with open_runner(ClusterConfig(workers=2, threads_per_worker=1, dashboard_address=":0", progress=False)) as runner:
        yield runner


@pytest.fixture(scope="session")
def scheduler_address(cluster: Runner) -> str:
    assert cluster.client is not None
    return cluster.client.scheduler.address
