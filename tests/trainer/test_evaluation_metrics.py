"""Evaluation metrics from finished episodes, with and without the training data's reference scores."""

from __future__ import annotations

import pytest

from dreamstream.collect.results import Episode
from dreamstream.datasets.scores import ReferenceScores
from dreamstream.train.loop.evaluation import episode_metrics


def episode(ret: float, terminal: bool = True) -> Episode:
    return Episode(worker=0, ret=ret, length=10, terminal=terminal, policy="snapshot", policy_version=3)


def test_normalised_score_is_logged_only_with_reference_scores():
    episodes = [episode(0.9), episode(0.5), episode(0.0, terminal=False)]
    plain = episode_metrics(episodes)
    assert "eval/normalised_score" not in plain
    assert plain["eval/success"] == pytest.approx(2 / 3) and plain["eval/return"] == pytest.approx(1.4 / 3)
    scored = episode_metrics(episodes, ReferenceScores(random=0.2, expert=0.9))
    assert scored["eval/normalised_score"] == pytest.approx((1.4 / 3 - 0.2) / 0.7)
    assert {k: v for k, v in scored.items() if k != "eval/normalised_score"} == plain
