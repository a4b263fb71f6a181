"""`dreamstream corpus`: the output obeys its recipe (filters, mixture, dedup, split, shard size, chunk
order), validates and reads with `Dataset`; a bad recipe fails with a clear error before any work."""

from __future__ import annotations

import copy
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import yaml
from gymnasium import spaces
from pipeline_helpers import Episode, content_digest, make_episode, write_dataset

from dreamstream import cli
from dreamstream.datasets import Dataset, DatasetCard, spec_from_spaces
from dreamstream.pipelines.cluster import ClusterConfig
from dreamstream.pipelines.corpus import build, prepare, run_corpus
from dreamstream.pipelines.recipe import RecipeError, parse_recipe
from dreamstream.pipelines.stats import compute_stats
from dreamstream.pipelines.validate import validate_dataset

# A scheduler address where nothing listens: a recipe error must come before any attempt to use it.
NO_CLUSTER = ClusterConfig(scheduler="tcp://127.0.0.1:9", progress=False)


@pytest.fixture(scope="module")
def sources(tmp_path_factory, card, spec) -> dict:
    """expert: short, high return; random: long, low return, with 4 copies of its own episodes and 2 of
    the expert's; replay: policy versions 0..5. Every duplicate passes the filters used below."""
    root = tmp_path_factory.mktemp("sources")
    rng = np.random.default_rng(11)
    expert = [make_episode(spec, rng, int(rng.integers(6, 20)), float(rng.integers(8, 13)), policy="expert",
                           version=3, writer="e") for _ in range(20)]
    random = [make_episode(spec, rng, int(rng.integers(20, 60)), float(rng.integers(-2, 4)), terminal=i % 3 > 0,
                           policy="random", writer="r") for i in range(30)]
    short_random = [e for e in random if e.steps <= 50][:4]
    strong_expert = [e for e in expert if e.ret >= 9][:2]
    copies = [Episode(copy.deepcopy(e.arrays), "random", 0, "r") for e in short_random + strong_expert]
    replay = [make_episode(spec, rng, int(rng.integers(10, 30)), float(v), policy="learner", version=v,
                           writer="p") for v in range(6) for _ in range(3)]
    urls = {name: str(root / name) for name in ("expert", "random", "replay")}
    write_dataset(urls["expert"], card, expert, chunk_steps=7, shard_bytes=12_000)
    write_dataset(urls["random"], card, random + copies, chunk_steps=16, shard_bytes=25_000)
    write_dataset(urls["replay"], card, replay, chunk_steps=16)
    return {"urls": urls, "expert": expert, "random": random + copies, "replay": replay, "root": root}


def read_episodes(url: str) -> dict[str, dict]:
    """Output episode id -> its arrays (chunks joined in order), policy, and the shards holding it."""
    dataset = Dataset(url)
    chunks = defaultdict(list)
    for chunk in dataset.chunks():
        chunks[chunk.row.episode].append(chunk)
    out = {}
    for episode, parts in chunks.items():
        parts.sort(key=lambda c: c.row.chunk)
        assert [c.row.chunk for c in parts] == list(range(len(parts)))  # in order, none missing
        assert [c.row.start for c in parts] == list(np.cumsum([0] + [c.row.steps for c in parts[:-1]]))
        arrays = {name: np.concatenate([c.arrays[name] for c in parts]) for name in dataset.spec.fields}
        out[episode] = {"arrays": arrays, "policies": {(c.row.policy, c.row.policy_version) for c in parts},
                        "shards": {c.shard for c in parts}, "chunk_steps": max(c.row.steps for c in parts)}
    return out


def recipe_dict(sources: dict, out: Path, **changes) -> dict:
    data = {
        "name": "test_mix",
        "output": {"url": str(out), "shard_mib": 0.02, "chunk_steps": 8},
        "sources": [
            {"url": sources["urls"]["expert"], "label": "expert", "filter": {"min_return": 9}},
            {"url": sources["urls"]["random"], "label": "random", "filter": {"max_length": 50}},
        ],
        "filter": {"min_length": 6},
        "mixture": {"weights": {"expert": 0.4, "random": 0.6}},
        "dedup": True,
        "split": {"validation": 0.25},
        "seed": 3,
    }
    data.update(changes)
    return data


def test_recipe_output_obeys_the_recipe(sources, tmp_path, cluster):
    out = tmp_path / "corpus"
    recipe = parse_recipe(recipe_dict(sources, out))
    summary = build(prepare(recipe), cluster)

    digests = {"expert": {e.digest: e for e in sources["expert"]}, "random": {e.digest: e for e in sources["random"]}}
    assert summary["duplicates"] == 6  # 4 copies within random, 2 copies of expert episodes (expert listed first)
    splits = {"train": read_episodes(str(out)), "validation": read_episodes(f"{out}/validation")}
    seen: dict[str, str] = {}
    labels = defaultdict(int)
    for name, episodes in splits.items():
        assert episodes, name
        for info in episodes.values():
            digest = content_digest(info["arrays"])
            assert digest not in seen, f"episode content in {seen.get(digest)} and {name}"  # no dupes, no overlap
            seen[digest] = name
            label = "expert" if digest in digests["expert"] else "random"
            source = digests[label][digest]  # every output episode is a source episode, unchanged
            labels[label] += 1
            ret, steps = float(info["arrays"]["reward"].sum()), len(info["arrays"]["reward"])
            assert steps >= 6
            assert ret >= 9 if label == "expert" else steps <= 50
            assert info["policies"] == {(source.policy, source.version)}
            assert len(info["shards"]) == 1  # an episode's chunks stay together...
            assert info["chunk_steps"] <= 8  # ...re-chunked to the output's chunk size
    total = sum(labels.values())
    # episodes mixture: largest-remainder rounding, so each label is within one episode of its weight
    assert abs(labels["expert"] - 0.4 * total) <= 1 and abs(labels["random"] - 0.6 * total) <= 1
    assert total == summary["counts"]["episodes"]
    n_val = len(splits["validation"])
    assert abs(n_val - 0.25 * total) <= 2  # rounded within each label

    for url in (str(out), f"{out}/validation"):
        report = validate_dataset(url, cluster)
        assert report["ok"], report["problems"]
    card = Dataset(str(out)).card
    assert card.lineage["kind"] == "corpus" and card.lineage["split"] == "train"
    assert card.lineage["recipe"]["mixture"]["weights"] == {"expert": 0.4, "random": 0.6}
    assert [s["name"] for s in card.lineage["sources"]] == ["expert", "random"]
    assert card.lineage["expected"]["episodes"] == len(splits["train"])
    stats = compute_stats(str(out), cluster).summary
    assert stats["lineage"]["complete"]

    # shards: about the target size (0.02 MiB); more than one; none far above unless it holds one episode
    records = Dataset(str(out)).records()
    assert len(records) > 2
    for record in records:
        assert record.bytes < 3 * 0.02 * 2**20 or len({r.episode for r in record.samples}) == 1


def test_steps_mixture_policy_filter_and_no_dedup(sources, tmp_path, cluster):
    out = tmp_path / "corpus"
    data = recipe_dict(sources, out, dedup=False, split={"validation": 0.0}, filter={},
                       mixture={"weights": {"expert": 0.3, "replay": 0.7}, "unit": "steps"})
    data["sources"] = [{"url": sources["urls"]["expert"], "label": "expert"},
                       {"url": sources["urls"]["replay"], "label": "replay",
                        "filter": {"policies": ["learner"], "min_policy_version": 2, "return_percentile": [25, 100]}}]
    summary = build(prepare(parse_recipe(data)), cluster)
    assert summary["duplicates"] == 0 and "validation" not in summary["splits"]
    assert not Path(f"{out}/validation").exists()
    episodes = read_episodes(str(out))
    steps = defaultdict(int)
    longest = 0
    for info in episodes.values():
        (policy, version), = info["policies"]
        n = len(info["arrays"]["reward"])
        steps[policy] += n
        longest = max(longest, n)
        if policy == "learner":
            assert version >= 2
    total = sum(steps.values())
    assert total == summary["counts"]["steps"]
    # steps mixture: whole episodes, so each label's share is off by less than one episode
    assert abs(steps["expert"] / total - 0.3) <= longest / total
    assert abs(steps["learner"] / total - 0.7) <= longest / total
    # the percentile filter: learner episodes below the 25th percentile of eligible returns are out
    eligible = sorted(e.ret for e in sources["replay"] if e.version >= 2)
    low = np.percentile(eligible, 25)
    learner = [i for i in episodes.values() if next(iter(i["policies"]))[0] == "learner"]
    assert learner and all(float(i["arrays"]["reward"].sum()) >= low for i in learner)


def test_corpus_cli_and_dataset_reader(sources, tmp_path, scheduler_address, capsys):
    out = tmp_path / "corpus"
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe_dict(sources, out)))
    assert cli.main(["corpus", str(path), "--scheduler", scheduler_address]) == 0
    text = capsys.readouterr().out
    assert "duplicates dropped: 6" in text and "validation" in text
    dataset = Dataset(str(out))
    assert dataset.card.lineage["recipe"]["name"] == "test_mix"
    chunks = list(dataset.chunks())
    assert sum(c.row.steps for c in chunks) == dataset.card.lineage["expected"]["steps"]
    assert cli.main(["validate", str(out)]) == 0


# -- bad recipes: a clear error, before any work ------------------------------------------------------


def _other_spec_source(root: Path, rng) -> str:
    spec = spec_from_spaces(spaces.Box(-1, 1, (4,), np.float32), spaces.Discrete(3))
    url = str(root / "other_spec")
    if not Path(url).exists():
        card = DatasetCard.create(spec, env_id="Other-v0")
        write_dataset(url, card, [make_episode(spec, rng, 10, 1.0)])
    return url


BAD = {
    "unknown key": (lambda d, s: d.update(mixtrue=d.pop("mixture")), "unknown config key 'mixtrue'.*'mixture'"),
    "unknown filter field": (lambda d, s: d["filter"].update(min_retrun=1),
                             "unknown config key 'filter.min_retrun'.*'min_return'"),
    "unknown source": (lambda d, s: d["sources"][1].update(url=str(s["root"] / "nope")),
                       "unknown source 'nope'.*no dataset.json"),
    "min above max": (lambda d, s: d["filter"].update(min_return=5, max_return=1),
                      "impossible filter: min_return 5.* > max_return 1"),
    "filter keeps nothing": (lambda d, s: d["sources"][0]["filter"].update(min_return=1000),
                             "impossible filter: no episode of source 'expert' passes.*returns"),
    "bad percentile": (lambda d, s: d["filter"].update(return_percentile=[90, 10]),
                       "return_percentile"),
    "weights do not add up": (lambda d, s: d["mixture"]["weights"].update(random=0.7),
                              "mixture weights add up to 1.1, not 1"),
    "label without weight": (lambda d, s: d["mixture"].update(weights={"expert": 1.0}),
                             "source labels \\['random'\\] have no mixture weight"),
    "weight without source": (lambda d, s: d["mixture"]["weights"].update(medium=0.0001, random=0.5999),
                              "mixture labels \\['medium'\\] have no source"),
    "too many episodes": (lambda d, s: d["mixture"].update(total=500), "needs more episodes.*expert: 200 wanted"),
    "different specs": (lambda d, s: d["sources"].append({"url": _other_spec_source(s["root"],
                                                                                     np.random.default_rng(0)),
                                                          "label": "random"}),
                        "different specs.*'expert' and 'other_spec'.*action"),
    "wrong type": (lambda d, s: d.update(dedup="yes"), "dedup: expected true/false"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_recipe_fails_before_any_work(case, sources, tmp_path):
    out = tmp_path / "corpus"
    data = recipe_dict(sources, out)
    change, message = BAD[case]
    change(data, sources)
    with pytest.raises(RecipeError, match=message):
        run_corpus(parse_recipe(data), NO_CLUSTER)  # never reaches the (absent) scheduler
    assert not out.exists()


def test_existing_output_and_cli_error(sources, card, tmp_path, capsys):
    out = tmp_path / "corpus"
    write_dataset(str(out), card, sources["expert"][:1])
    with pytest.raises(RecipeError, match="already holds a dataset"):
        run_corpus(parse_recipe(recipe_dict(sources, out)), NO_CLUSTER)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(recipe_dict(sources, tmp_path / "new", mixtrue={})))
    assert cli.main(["corpus", str(path), "--scheduler", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "dreamstream corpus: error:" in err and "did you mean 'mixture'" in err and str(path) in err
    assert not (tmp_path / "new").exists()
