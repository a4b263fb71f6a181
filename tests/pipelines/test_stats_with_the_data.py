"""Statistics and scores kept with the data: `stats --write` stores ROOT/stats.json (Dataset.stats() reads it
back, checked), and reference scores on corpus cards give normalised scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pipeline_helpers import make_episode, write_dataset

from dreamstream import cli
from dreamstream.datasets import Dataset, DatasetCard, DatasetError, ReferenceScores, normalised_score
from dreamstream.datasets.card import parse_card
from dreamstream.datasets.stats_file import MAX_GROUPS, MAX_STATS_BYTES, STATS_NAME, parse_stats, stats_document
from dreamstream.pipelines.cluster import ClusterConfig, open_runner
from dreamstream.pipelines.corpus import build, prepare
from dreamstream.pipelines.recipe import RecipeError, parse_recipe
from dreamstream.pipelines.stats import compute_stats


def episodes(spec, count: int, seed: int = 0, writer: str = "w"):
    rng = np.random.default_rng(seed)
    return [make_episode(spec, rng, int(rng.integers(5, 30)), float(rng.integers(-3, 9)), terminal=i % 2 == 0,
                         version=i % 3, writer=writer) for i in range(count)]


@pytest.fixture(params=["local", "s3"])
def url(request, tmp_path) -> str:
    return str(tmp_path / "ds") if request.param == "local" else request.getfixturevalue("s3_url") + "/ds"


def test_stats_write_stores_what_the_command_prints(url, card, spec, capsys):
    write_dataset(url, card, episodes(spec, 12))
    assert Dataset(url).stats() is None
    assert cli.main(["stats", url, "--write", "--json", "--workers", "0"]) == 0
    printed = json.loads(capsys.readouterr().out)
    stored = Dataset(url).stats()
    assert stored is not None and stored.summary == printed
    assert (stored.shards, stored.steps) == (printed["shards"], printed["steps"])
    assert stored.summary["episodes"]["complete"] == 12 and "rewards" in stored.summary

    # more data, written again: the document is replaced whole and says what it was computed from
    write_dataset(url, card, episodes(spec, 5, seed=1, writer="w2"))
    assert cli.main(["stats", url, "--write", "--workers", "0"]) == 0
    again = Dataset(url).stats()
    assert again.summary["episodes"]["complete"] == 17 and again.shards > stored.shards


def test_groups_are_bounded_in_the_stored_document(tmp_path, card, spec):
    url = str(tmp_path / "ds")
    write_dataset(url, card, episodes(spec, 3))
    with open_runner(ClusterConfig(workers=0, progress=False)) as runner:
        summary = compute_stats(url, runner, shards=False).summary
    group = summary["by_writer"]["w"]
    summary["by_writer"] = {f"w{i:04d}": {**group, "steps": i} for i in range(MAX_GROUPS + 44)}
    stored = parse_stats(stats_document(summary))
    kept = stored.summary["by_writer"]
    assert len(kept) == MAX_GROUPS and min(g["steps"] for g in kept.values()) == 44  # the largest kept
    assert stored.summary["omitted_groups"] == {"by_writer": 44}


def document(**changes) -> dict:
    summary = {"shards": 1, "samples": 2, "steps": 30, "bytes": 100,
               "episodes": {"total": 2, "complete": 2, "incomplete": 0, "terminated": 1, "truncated": 1},
               "return": None, "length": None, "by_policy": {}, "by_writer": {}}
    doc = {"format": "dreamstream.stats", "version": 1, "created": "2026-01-01T00:00:00Z", "shards": 1,
           "steps": 30, "summary": summary}
    for key, value in changes.items():
        target, _, name = key.rpartition(".")
        (summary if target == "summary" else doc)[name] = value
    return doc


@pytest.mark.parametrize(("changes", "match"), [
    ({"version": 2}, "key 'version'"),
    ({"format": "dreamstream.card"}, "key 'format'"),
    ({"summary.steps": -1}, "key 'summary.steps'"),
    ({"summary.episodes": {"total": 2}}, "key 'summary.episodes.complete': missing"),
    ({"summary.return": {"count": 2, "mean": "high"}}, "key 'summary.return.mean'"),
    ({"summary.by_writer": {"w": {"episodes": 1.5}}}, "key 'summary.by_writer.w.episodes'"),
    ({"summary.by_policy": {f"p@{i}": {} for i in range(MAX_GROUPS + 1)}}, f"more than {MAX_GROUPS}"),
    ({"steps": 31}, "differ from its summary"),
])
def test_a_bad_document_is_refused_naming_the_key(tmp_path, card, spec, changes, match):
    url = str(tmp_path / "ds")
    write_dataset(url, card, episodes(spec, 1))
    assert parse_stats(json.dumps(document()).encode()).steps == 30
    (tmp_path / "ds" / STATS_NAME).write_text(json.dumps(document(**changes)))
    with pytest.raises(DatasetError, match=match) as caught:
        Dataset(url).stats()
    assert STATS_NAME in str(caught.value) and url in str(caught.value)


def test_a_huge_document_is_refused_before_it_is_parsed(tmp_path, card, spec):
    url = str(tmp_path / "ds")
    write_dataset(url, card, episodes(spec, 1))
    (tmp_path / "ds" / STATS_NAME).write_bytes(b" " * (MAX_STATS_BYTES + 1))
    with pytest.raises(DatasetError, match="larger than"):
        Dataset(url).stats()


def test_normalised_score_from_scores_or_card(card):
    scores = ReferenceScores(random=-21.0, expert=21.0)
    assert normalised_score(scores, -21) == 0.0 and normalised_score(scores, 21) == 1.0
    assert normalised_score(scores, 0) == pytest.approx(0.5)
    assert normalised_score(card, 5.0) is None and normalised_score(None, 5.0) is None
    with_scores = parse_card(json.dumps({**card.to_json(), "reference_scores": scores.to_json()}).encode())
    assert with_scores.reference_scores == scores and normalised_score(with_scores, 42) == pytest.approx(1.5)
    assert "reference_scores" not in card.to_json()  # a card without scores keeps its old form


@pytest.mark.parametrize(("scores", "match"), [
    ({"random": 1, "expert": 1}, "no scale to normalise by"),
    ({"random": 0}, "key 'reference_scores.expert': missing"),
    ({"random": 0, "expert": "10"}, "key 'reference_scores.expert'"),
    ({"random": 0, "expert": 10, "ref_max": 3}, "key 'reference_scores.ref_max': unknown key"),
    ([0, 10], "key 'reference_scores': expected an object"),
])
def test_bad_reference_scores_on_a_card_are_refused(card, scores, match):
    with pytest.raises(DatasetError, match=match):
        parse_card(json.dumps({**card.to_json(), "reference_scores": scores}).encode(), "ROOT")


def test_a_corpus_recipe_puts_reference_scores_on_its_card(tmp_path, card, spec):
    source = str(tmp_path / "source")
    write_dataset(source, card, episodes(spec, 6))
    recipe = {"name": "scored", "sources": [{"url": source}], "output": {"url": str(tmp_path / "corpus")},
              "reference_scores": {"random": -3, "expert": 9}}
    with open_runner(ClusterConfig(workers=0, progress=False)) as runner:
        build(prepare(parse_recipe(recipe)), runner)
    corpus = Dataset(str(tmp_path / "corpus"))
    assert corpus.card.reference_scores == ReferenceScores(random=-3.0, expert=9.0)
    for episode in corpus.episodes():
        assert normalised_score(corpus.card, episode.ret) == pytest.approx((episode.ret + 3) / 12)
    assert DatasetCard.from_json(corpus.card.to_json()) == corpus.card
    with pytest.raises(RecipeError, match="no scale to normalise by"):
        parse_recipe({**recipe, "reference_scores": {"random": 2, "expert": 2}})
