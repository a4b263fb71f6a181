"""The episode index: one rule for complete, growing and damaged episodes, from commit records alone."""

from __future__ import annotations

import pytest

from dreamstream.datasets.episodes import COMPLETE, DAMAGED, GROWING, EpisodeIndex
from dreamstream.datasets.records import CommitRecord, SampleRow


def row(episode: str, chunk: int, start: int, steps: int, last: bool = False, terminal: bool = False,
        policy_version: int = 0) -> SampleRow:
    return SampleRow(key=f"{episode}-{chunk:04d}", episode=episode, chunk=chunk, start=start, steps=steps,
                     reward_sum=1.0, is_first=chunk == 0, is_last=last, is_terminal=terminal, policy="random",
                     policy_version=policy_version, created=0.0)


def record(name: str, *rows: SampleRow, writer: str = "w") -> CommitRecord:
    return CommitRecord(name=name, bytes=10_000, sha256="0" * 64, writer=writer, created=0.0, samples=rows)


@pytest.mark.parametrize(("rows", "state", "problem"), [
    ([row("e", 0, 0, 4), row("e", 1, 4, 3, last=True, terminal=True)], COMPLETE, ""),
    ([row("e", 0, 0, 4, last=True)], COMPLETE, ""),
    ([row("e", 0, 0, 4), row("e", 1, 4, 3)], GROWING, ""),
    ([row("e", 0, 0, 4), row("e", 2, 8, 3, last=True)], DAMAGED, "chunk(s) [1] missing"),
    ([row("e", 1, 4, 3, last=True)], DAMAGED, "chunk(s) [0] missing"),
    ([row("e", 0, 0, 4), row("e", 0, 0, 4), row("e", 1, 4, 3, last=True)], DAMAGED, "more than once"),
    ([row("e", 0, 0, 4), row("e", 1, 5, 3, last=True)], DAMAGED, "starts at row 5"),
    ([row("e", 0, 0, 4, last=True), row("e", 1, 4, 3, last=True)], DAMAGED, "is_last on chunk(s) [0, 1]"),
])
def test_one_rule_for_complete_growing_and_damaged(rows, state, problem):
    # Each chunk in its own shard, committed in reverse order: the index sorts chunks by index.
    records = [record(f"s{i}", r) for i, r in reversed(list(enumerate(rows)))]
    (episode,) = EpisodeIndex(records)
    assert (episode.state, episode.complete) == (state, state == COMPLETE)
    assert problem in episode.problem and bool(problem) == (state == DAMAGED)
    assert [c.chunk for c in episode.chunks] == sorted(r.chunk for r in rows)
    assert episode.steps == sum(r.steps for r in rows) and episode.ret == len(rows)


def test_an_entry_describes_the_episode():
    index = EpisodeIndex([
        record("a", row("x", 0, 0, 4), row("y", 0, 0, 2, last=True), writer="w1"),
        record("b", row("x", 1, 4, 3, last=True, policy_version=2), writer="w2"),
    ])
    assert index.ids == ["x", "y"] and [e.id for e in index.complete] == ["x", "y"] and not index.partial
    x = index["x"]
    assert [(c.shard, c.key, c.steps) for c in x.chunks] == [("a", "x-0000", 4), ("b", "x-0001", 3)]
    assert x.shards == ["a", "b"] and x.steps == 7 and x.truncated and not x.terminated
    assert (x.policy, x.policy_version, x.writer) == ("random", 0, "w1")
    assert x.policies == {"random@0", "random@2"}
    assert "z" not in index and len(index) == 2
