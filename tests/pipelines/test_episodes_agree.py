"""inspect, stats, corpus and dream agree on which episodes are complete (one rule: datasets.episodes).

Before the episode index, inspect and dream called an episode complete when its last chunk was committed,
while stats and corpus also wanted every chunk from the first: a missing middle chunk or a chunk committed
twice made them disagree. This dataset has both, and a growing episode.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from pipeline_helpers import make_episode, write_dataset

from dreamstream.datasets import Dataset, EpisodeWriter, WriterConfig
from dreamstream.datasets.summary import summarize
from dreamstream.pipelines.corpus import prepare
from dreamstream.pipelines.recipe import parse_recipe
from dreamstream.pipelines.stats import record_stats
from dreamstream.train.dream.api import episode_ids


def damaged_dataset(root: Path, spec, card) -> dict[str, str]:
    """Episodes of 12 (three chunks), 8 and 5 rows, one committed shard per chunk; then chunk 1 of the first
    loses its commit record, chunk 0 of the second is committed twice, and a third writer leaves an episode
    open. -> {"gap", "twice", "whole", "growing"}: episode id of each."""
    rng = np.random.default_rng(3)
    episodes = [make_episode(spec, rng, steps, 1.0, terminal=steps != 5) for steps in (12, 8, 5)]
    write_dataset(str(root), card, episodes, chunk_steps=4, shard_bytes=1)
    open_rows = make_episode(spec, rng, 6, 0.0).arrays
    with EpisodeWriter(str(root), card, WriterConfig(chunk_steps=4), writer_id="wopen") as writer:
        for t in range(5):  # the writer stops before the episode's last row
            writer.add_step({k: v[t] for k, v in open_rows.items()}, slot=0, policy="random", policy_version=0)
    by_episode: dict[str, list] = defaultdict(list)
    for record in Dataset(str(root)).records():
        for row in record.samples:
            by_episode[row.episode].append((row, record.name))
    steps = {episode: sum(row.steps for row, _ in rows) for episode, rows in by_episode.items()}
    growing = next(e for e, rows in by_episode.items() if not any(row.is_last for row, _ in rows))
    ids = {"gap": next(e for e, n in steps.items() if n == 12), "twice": next(e for e, n in steps.items() if n == 8),
           "whole": next(e for e, n in steps.items() if n == 5 and e != growing), "growing": growing}
    gap = next(name for row, name in by_episode[ids["gap"]] if row.chunk == 1)
    (root / "index" / f"{gap}.json").unlink()
    twice = next(name for row, name in by_episode[ids["twice"]] if row.chunk == 0)
    record = json.loads((root / "index" / f"{twice}.json").read_text())
    record.update(name=f"{twice}x", shard=f"shards/{twice}x.tar")
    (root / "index" / f"{twice}x.json").write_text(json.dumps(record))
    (root / "shards" / f"{twice}x.tar").write_bytes((root / "shards" / f"{twice}.tar").read_bytes())
    return ids


def test_inspect_stats_corpus_and_dream_count_the_same_complete_episodes(tmp_path, spec, card):
    root = tmp_path / "data"
    ids = damaged_dataset(root, spec, card)
    dataset = Dataset(str(root))
    records = dataset.records()

    inspect = summarize(records)
    stats = record_stats(records)
    recipe = parse_recipe({"name": "all", "output": {"url": str(tmp_path / "corpus")},
                           "sources": [{"url": str(root), "label": "all"}]})
    corpus = prepare(recipe).sources[0]

    assert set(episode_ids(dataset, complete=True)) == {ids["whole"]}
    assert {c.episode.id for c in corpus.candidates} == {ids["whole"]}
    assert inspect["complete_episodes"] == stats["episodes"]["complete"] == corpus.counts["complete"] == 1
    assert inspect["episodes"] == stats["episodes"]["total"] == corpus.counts["episodes"] == 4
    assert stats["episodes"]["incomplete"] == 3
    assert inspect["truncated"] == stats["episodes"]["truncated"] == 1 and inspect["terminated"] == 0
    assert inspect["length"]["mean"] == stats["length"]["mean"] == 5
    # dream's default episode is the first complete one, and any committed episode can still be read.
    assert episode_ids(dataset)[0] == ids["gap"]
    assert len(dataset.episode(ids["gap"])["reward"]) == 8  # chunks 0 and 2: the missing rows are not faked
