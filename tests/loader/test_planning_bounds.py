"""Planning from hostile commit records: a record claiming 10^12 steps, zero steps or negative steps never
reaches the samplers, so planning cannot hang and follow mode's replay probabilities stay finite."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bounded import bounded

from dreamstream.datasets import Dataset, DatasetError
from dreamstream.datasets.loader import LoaderConfig, make_loader
from dreamstream.datasets.loader.shards import FollowSource
from dreamstream.datasets.loader.tbtt import TbttSampler
from dreamstream.datasets.loader.windows import WindowSampler
from dreamstream.datasets.records import MAX_RECORD_STEPS, MAX_SAMPLE_STEPS

MEMORY_MB, SECONDS = 64, 10


def craft(url: str, name: str, steps: list[int], claimed_bytes: int | None = None) -> None:
    """Commit a record `name` whose samples claim `steps`, copied from the dataset's first record."""
    root = Path(Dataset(url).root)
    template = json.loads(next((root / "index").glob("*.json")).read_bytes())
    row = template["samples"][0]
    samples = [{**row, "episode": f"crafted{i}", "key": f"crafted{i}-0000", "chunk": 0, "start": 0,
                "is_first": True, "steps": n} for i, n in enumerate(steps)]
    record = {**template, "name": name, "shard": f"shards/{name}.tar", "samples": samples}
    if claimed_bytes is not None:
        record["bytes"] = claimed_bytes
    (root / "index" / f"{name}.json").write_text(json.dumps(record))


@pytest.mark.parametrize("steps", [10**12, 0, -3], ids=["1e12", "zero", "negative"])
def test_fixed_mode_refuses_the_record_at_once(corpus, steps):
    craft(corpus.url, "crafted-000000", [steps], claimed_bytes=2**39)
    with bounded(MEMORY_MB, SECONDS), pytest.raises(DatasetError, match=r"index/crafted-000000\.json.*"
                                                                       r"key 'samples\[0\]\.steps'"):
        len(make_loader(corpus.url, LoaderConfig(batch_size=4, seq_len=8, workers=0, prefetch=0)))


def follow_source(url: str) -> FollowSource:
    return FollowSource(Dataset(url), 0, 1, set(), relist_interval_s=0.01, replay_window=0,
                        rng=np.random.default_rng(0))


def test_follow_mode_skips_hostile_records_and_keeps_finite_probabilities(corpus):
    for i, steps in enumerate([10**12, 0, -3]):
        craft(corpus.url, f"crafted-{i:06d}", [steps])
    source = follow_source(corpus.url)
    with bounded(MEMORY_MB, SECONDS):
        source.poll(force=True)
    assert not any(name.startswith("crafted") for name in source.known)
    assert len(source.known) == len(Dataset(corpus.url).record_names()) - 3
    p = source._window_p
    assert p is not None and np.isfinite(p).all() and p.min() > 0 and np.isclose(p.sum(), 1.0)


@pytest.mark.parametrize("sampler", ["tbtt", "windows"])
def test_follow_planning_over_hostile_records_makes_progress(corpus, sampler):
    """Every planned piece covers at least one row, so each batch's planning ends."""
    for i, steps in enumerate([10**12, 0, -3]):
        craft(corpus.url, f"crafted-{i:06d}", [steps])
    source = follow_source(corpus.url)
    rng = np.random.default_rng(1)
    planner = (TbttSampler(source, 4, 8, 64, 100, rng) if sampler == "tbtt"
               else WindowSampler(source, 4, 8, 64, rng))
    with bounded(MEMORY_MB, SECONDS):
        plans = [planner.next_batch() for _ in range(50)]
    assert all(plan is not None and plan.pieces for plan in plans)
    assert all(piece.length >= 1 for plan in plans for piece in plan.pieces)


def test_a_record_at_the_schema_bounds_plans_in_bounded_time(corpus):
    """The largest record the schema accepts (MAX_RECORD_STEPS steps, claimed bytes to match) costs one
    epoch's planning of that many steps, once; its shard then fails the size check when fetched."""
    samples = MAX_RECORD_STEPS // MAX_SAMPLE_STEPS
    craft(corpus.url, "crafted-000000", [MAX_SAMPLE_STEPS] * samples, claimed_bytes=MAX_RECORD_STEPS)
    loader = make_loader(corpus.url, LoaderConfig(batch_size=16, seq_len=64, workers=0, prefetch=0))
    with bounded(MEMORY_MB, 30):  # about 3 s on one core
        assert len(loader) >= MAX_RECORD_STEPS // (16 * 64)
