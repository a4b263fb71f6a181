"""`dreamstream corpus RECIPE.yaml`: a new dataset built from existing ones, as a recipe says.

Stages (docs/pipelines.md, "corpus"):
1. check (no I/O): the recipe's keys, ranges, mixture weights (recipe.py);
2. open (small reads, client): every source's card (it must exist, specs must match), the output must
   not exist, then every source's commit records;
3. plan (client, from the records): filters, then per-source pools of candidate episodes; a filter that
   keeps nothing is an error here, before any shard is read;
4. scan (one Dask task per source shard with candidates): row digests for de-duplication (content
   hash per episode, independent of how episodes are chunked) and the output bytes per step; without
   dedup only one shard per source is scanned, for the size estimate;
5. select (client): de-duplication, the labelled mixture (seeded), the train/validation split by
   episode within each label; then both cards are written, their lineage stating what is to come;
6. write (one Dask task per output shard): the task reads the source shards that hold its episodes and
   writes them, chunk by chunk and in order, with its own EpisodeWriter, committing one shard.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dreamstream.datasets import CommitRecord, Dataset, DatasetCard, DatasetError, EpisodeWriter, WriterConfig
from dreamstream.datasets.card import ensure_card
from dreamstream.datasets.codec import encode_array
from dreamstream.datasets.episodes import Episode, EpisodeIndex
from dreamstream.datasets.records import INDEX, SHARDS
from dreamstream.datasets.spec import spec_difference
from dreamstream.datasets.storage import list_names
from dreamstream.datasets.writer import COMPRESSED_KINDS
from dreamstream.pipelines.cluster import ClusterConfig, Runner, open_runner
from dreamstream.pipelines.recipe import FilterConfig, Recipe, RecipeError, recipe_json
from dreamstream.pipelines.shards import task_dataset, task_url
from dreamstream.redact import redact_tree

log = logging.getLogger(__name__)

VALIDATION = "validation"
# Per-sample bytes besides the arrays: tar headers (512 per member), meta.json, padding.
SAMPLE_OVERHEAD = 512 * 10 + 1024


@dataclass
class Candidate:
    """One complete source episode that passed the filters."""

    source: int
    episode: Episode
    chunks: list[tuple[int, str]]  # (record index in its source, sample key), in chunk order
    label: str
    digest: str = ""

    @property
    def steps(self) -> int:
        return self.episode.steps

    @property
    def order(self) -> tuple[int, int, str]:
        """Where the episode starts in its source: sources in recipe order, then commit order."""
        return self.source, self.chunks[0][0], self.episode.id


@dataclass
class Source:
    index: int
    name: str
    url: str
    label: str
    dataset: Dataset
    records: list[CommitRecord] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    bytes_per_step: float = 0.0


# -- stage 2: open ------------------------------------------------------------------------------------


def _env_matches(env_id: str, patterns: list[str] | None) -> bool:
    return patterns is None or any(fnmatch.fnmatchcase(env_id, p) for p in patterns)


def open_sources(recipe: Recipe, where: str) -> list[Source]:
    """Read each source's card; check specs match and the env filters leave at least one source."""
    sources: list[Source] = []
    first: DatasetCard | None = None
    for i, config in enumerate(recipe.sources):
        dataset = Dataset(config.url)
        try:
            card = dataset.card
        except DatasetError as exc:
            raise RecipeError(f"{where}: unknown source {config.name!r}: {exc}") from exc
        if first is None:
            first = card
        elif card.spec != first.spec:
            raise RecipeError(f"{where}: sources have different specs: {recipe.sources[0].name!r} and "
                              f"{config.name!r} differ in {spec_difference(first.spec, card.spec)}")
        if not (_env_matches(card.env_id, recipe.filter.env) and _env_matches(card.env_id, config.filter.env)):
            log.info("source %s (env %s) left out by the env filter", config.name, card.env_id)
            continue
        sources.append(Source(i, config.name, config.url, config.label, dataset))
    if not sources:
        envs = sorted({Dataset(s.url).card.env_id for s in recipe.sources})
        raise RecipeError(f"{where}: impossible filter: env {recipe.filter.env} matches no source (envs: {envs})")
    if recipe.mixture is not None:  # a label whose every source was dropped by the env filter
        missing = sorted(set(recipe.mixture.weights) - {s.label for s in sources})
        if missing:
            raise RecipeError(f"{where}: impossible filter: the env filter leaves no source for labels {missing}")
    return sources


def check_output_free(url: str, where: str) -> Dataset:
    output = Dataset(url)
    fs, root = output.fs, output.root
    if fs.exists(f"{root}/dataset.json") or list_names(fs, f"{root}/{INDEX}") or list_names(fs, f"{root}/{SHARDS}"):
        raise RecipeError(f"{where}: output {url!r} already holds a dataset; choose a new output.url "
                          "(a corpus is never written over another dataset)")
    return output


# -- stage 3: plan ------------------------------------------------------------------------------------


def _policy_ok(episode: Episode, f: FilterConfig) -> bool:
    for key in episode.policies:
        name, _, version = key.rpartition("@")
        v = int(version)
        if f.policies is not None and key not in f.policies and name not in f.policies:
            return False
        if f.min_policy_version is not None and v < f.min_policy_version:
            return False
        if f.max_policy_version is not None and v > f.max_policy_version:
            return False
    return True


def _passes(episode: Episode, f: FilterConfig) -> bool:
    """Every condition of `f` except the return percentile."""
    if f.outcome == "terminated" and not episode.terminated or f.outcome == "truncated" and not episode.truncated:
        return False
    if f.min_return is not None and episode.ret < f.min_return:
        return False
    if f.max_return is not None and episode.ret > f.max_return:
        return False
    if f.min_length is not None and episode.steps < f.min_length:
        return False
    if f.max_length is not None and episode.steps > f.max_length:
        return False
    return _policy_ok(episode, f)


def _percentile_window(episodes: list[Episode], f: FilterConfig) -> tuple[float, float]:
    if f.return_percentile is None or not episodes:
        return -np.inf, np.inf
    lo, hi = np.percentile([e.ret for e in episodes], f.return_percentile)
    return float(lo), float(hi)


def _describe_pool(episodes: list[Episode]) -> str:
    if not episodes:
        return "it has no complete episode"
    returns = [e.ret for e in episodes]
    lengths = [e.steps for e in episodes]
    policies = sorted({p for e in episodes for p in e.policies})
    more = f" ... ({len(policies)} in all)" if len(policies) > 6 else ""
    return (f"its {len(episodes)} complete episodes have returns {min(returns):g}..{max(returns):g}, "
            f"lengths {min(lengths)}..{max(lengths)}, policies {policies[:6]}{more}")


def plan_source(source: Source, recipe: Recipe, where: str) -> None:
    """Read the source's commit records; fill `candidates` with the complete episodes that pass."""
    source.records = source.dataset.records()
    index = EpisodeIndex(source.records)
    record_index = {record.name: r for r, record in enumerate(source.records)}
    complete = index.complete
    local = recipe.sources[source.index].filter
    base = [e for e in complete if _passes(e, recipe.filter) and _passes(e, local)]
    windows = [_percentile_window(base, recipe.filter), _percentile_window(base, local)]
    kept = [e for e in base if all(lo <= e.ret <= hi for lo, hi in windows)]
    source.counts = {"episodes": len(index), "complete": len(complete), "passed_filter": len(kept)}
    if not kept:
        raise RecipeError(f"{where}: impossible filter: no episode of source {source.name!r} passes "
                          f"(recipe filter {_set_fields(recipe.filter)}, source filter {_set_fields(local)}); "
                          + _describe_pool(complete))
    for episode in kept:
        chunks = [(record_index[chunk.shard], chunk.key) for chunk in episode.chunks]
        source.candidates.append(Candidate(source.index, episode, chunks, source.label))
    source.candidates.sort(key=lambda c: (c.chunks[0][0], c.episode.id))


def _set_fields(f: FilterConfig) -> dict[str, Any]:
    defaults = FilterConfig()
    return {k: v for k, v in vars(f).items() if v != getattr(defaults, k)}


# -- stage 4: scan ------------------------------------------------------------------------------------


def scan_task(url: str, record: dict[str, Any], keys: list[str], digests: bool,
              compress_level: int | None) -> dict[str, Any]:
    """One task: per sample in `keys`, 16-byte digests of its rows (all fields, in spec order), and the
    bytes that the first sample takes when encoded as the output will encode it."""
    dataset = task_dataset(url)
    spec = dataset.spec
    out: dict[str, Any] = {"rows": {}, "encoded": 0, "encoded_steps": 0}
    for chunk in dataset.iter_shard(CommitRecord.from_json(record), keys=set(keys)):
        arrays = chunk.arrays
        if out["encoded_steps"] == 0:
            for name, array in arrays.items():
                level = compress_level if spec.fields[name].kind in COMPRESSED_KINDS else None
                out["encoded"] += len(encode_array(array, level)[1])
            out["encoded_steps"] = chunk.row.steps
        if digests:
            steps = chunk.row.steps
            rows = np.concatenate([np.ascontiguousarray(arrays[name]).reshape(steps, -1).view(np.uint8)
                                   for name in spec.fields], axis=1)
            out["rows"][chunk.key] = b"".join(hashlib.sha256(row).digest()[:16] for row in rows)
        elif out["encoded_steps"]:
            break
    return out


def scan(sources: list[Source], recipe: Recipe, runner: Runner) -> None:
    """Fill each candidate's content digest (when dedup is on) and each source's output bytes per step."""
    items, owners = [], []
    for source in sources:
        wanted: dict[int, list[str]] = defaultdict(list)
        for candidate in source.candidates:
            for r, key in candidate.chunks:
                wanted[r].append(key)
        record_indexes = sorted(wanted) if recipe.dedup else sorted(wanted)[:1]
        for r in record_indexes:
            items.append((task_url(source.url), source.records[r].to_json(), wanted[r], recipe.dedup,
                          recipe.output.compress_level))
            owners.append(source)
    rows: dict[tuple[int, str], bytes] = {}
    encoded: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for index, result in runner.map(scan_task, items, desc="scanning" + (" (dedup)" if recipe.dedup else "")):
        source = owners[index]
        for key, digest in result["rows"].items():
            rows[(source.index, key)] = digest
        encoded[source.index][0] += result["encoded"]
        encoded[source.index][1] += result["encoded_steps"]
    for source in sources:
        total, steps = encoded[source.index]
        source.bytes_per_step = total / max(steps, 1)
        if recipe.dedup:
            for candidate in source.candidates:
                h = hashlib.sha256()
                for _, key in candidate.chunks:
                    h.update(rows[(source.index, key)])
                candidate.digest = h.hexdigest()


# -- stage 5: select ----------------------------------------------------------------------------------


def dedup(sources: list[Source]) -> int:
    """Keep the first of each group of episodes with equal content; -> how many were dropped."""
    seen: set[str] = set()
    dropped = 0
    for source in sources:
        kept = []
        for candidate in source.candidates:
            if candidate.digest in seen:
                continue
            seen.add(candidate.digest)
            kept.append(candidate)
        source.counts["duplicates"] = len(source.candidates) - len(kept)
        dropped += source.counts["duplicates"]
        source.candidates = kept
    return dropped


def _largest_remainder(weights: dict[str, float], total: int) -> dict[str, int]:
    raw = {k: w * total for k, w in weights.items()}
    counts = {k: int(np.floor(v)) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: raw[k] - counts[k], reverse=True)[: total - sum(counts.values())]:
        counts[k] += 1
    return counts


def select(sources: list[Source], recipe: Recipe, where: str) -> list[Candidate]:
    """Apply the mixture (if any): a seeded random choice of episodes from each label's pool."""
    pools: dict[str, list[Candidate]] = defaultdict(list)
    for source in sources:
        pools[source.label].extend(source.candidates)
    mixture = recipe.mixture
    if mixture is None:
        return [c for source in sources for c in source.candidates]
    rng = np.random.default_rng(recipe.seed)
    weights = mixture.weights
    chosen: list[Candidate] = []
    if mixture.unit == "episodes":
        available = {label: len(pools[label]) for label in weights}
        total = mixture.total or int(min(available[k] / w for k, w in weights.items()) + 1e-9)
        counts = _largest_remainder(weights, total)
        short = {k: (counts[k], available[k]) for k in weights if counts[k] > available[k]}
        if short:
            raise RecipeError(f"{where}: the mixture needs more episodes than the filtered (and de-duplicated) "
                              f"sources hold: " + ", ".join(f"{k}: {n} wanted, {a} available"
                                                              for k, (n, a) in short.items()))
        if min(counts.values()) == 0:
            raise RecipeError(f"{where}: a mixture of {total} episodes leaves label(s) "
                              f"{[k for k, n in counts.items() if n == 0]} empty; raise mixture.total")
        for label in weights:
            pool = pools[label]
            picks = sorted(rng.choice(len(pool), size=counts[label], replace=False))
            chosen.extend(pool[i] for i in picks)
        return chosen
    available = {label: sum(c.steps for c in pools[label]) for label in weights}
    total = mixture.total or int(min(available[k] / w for k, w in weights.items()) + 1e-9)
    for label, weight in weights.items():
        target = weight * total
        if target > available[label] + 1e-9:
            raise RecipeError(f"{where}: the mixture needs {target:.0f} steps of label {label!r}, the filtered "
                              f"(and de-duplicated) sources hold {available[label]}")
        pool = pools[label]
        taken, steps = [], 0
        for i in rng.permutation(len(pool)):  # whole episodes until the label's share is reached
            if steps >= target - 1e-9:
                break
            taken.append(int(i))
            steps += pool[i].steps
        chosen.extend(pool[i] for i in sorted(taken))
    return chosen


def split(chosen: list[Candidate], recipe: Recipe) -> dict[str, list[Candidate]]:
    """Train/validation by whole episodes, the same fraction within each label."""
    out: dict[str, list[Candidate]] = {"train": [], VALIDATION: []}
    fraction = recipe.split.validation
    rng = np.random.default_rng([recipe.seed, 1])
    by_label: dict[str, list[Candidate]] = defaultdict(list)
    for candidate in chosen:
        by_label[candidate.label].append(candidate)
    for label in sorted(by_label):
        pool = by_label[label]
        n_val = int(round(fraction * len(pool))) if fraction > 0 else 0
        if fraction > 0 and n_val == 0 and len(pool) > 1:
            n_val = 1
        val = set(rng.choice(len(pool), size=n_val, replace=False).tolist()) if n_val else set()
        for i, candidate in enumerate(pool):
            out[VALIDATION if i in val else "train"].append(candidate)
    for name in out:
        out[name].sort(key=lambda c: c.order)
    return out


def counts_of(candidates: list[Candidate]) -> dict[str, Any]:
    by_label: dict[str, dict[str, int]] = defaultdict(lambda: {"episodes": 0, "steps": 0})
    for c in candidates:
        by_label[c.label]["episodes"] += 1
        by_label[c.label]["steps"] += c.steps
    episodes = len(candidates)
    steps = sum(c.steps for c in candidates)
    for entry in by_label.values():
        entry["episode_fraction"] = entry["episodes"] / max(episodes, 1)
        entry["step_fraction"] = entry["steps"] / max(steps, 1)
    return {"episodes": episodes, "steps": steps, "by_label": dict(sorted(by_label.items()))}


# -- stage 6: write -----------------------------------------------------------------------------------


def groups_of(candidates: list[Candidate], sources: dict[int, Source], recipe: Recipe) -> list[list[Candidate]]:
    """Consecutive episodes (in source order) whose estimated output size adds up to a shard."""
    target = recipe.output.shard_mib * 2**20
    chunk_steps = recipe.output.chunk_steps
    groups: list[list[Candidate]] = []
    current: list[Candidate] = []
    size = 0.0
    for c in candidates:
        estimate = c.steps * sources[c.source].bytes_per_step + -(-c.steps // chunk_steps) * SAMPLE_OVERHEAD
        if current and size + estimate > target:
            groups.append(current)
            current, size = [], 0.0
        current.append(c)
        size += estimate
    if current:
        groups.append(current)
    return groups


def write_task(out_url: str, reads: list[tuple[int, str, dict[str, Any], list[str]]],
               episodes: list[tuple[int, str]], writer_id: str, writer: dict[str, Any]) -> dict[str, Any]:
    """One task: read the listed source shards, write the listed episodes to one new shard of `out_url`.

    Each episode's chunks are fed to the writer in chunk order (a chunk that arrives early waits for its
    predecessors), row by row with the policy and version that made them; the writer re-chunks them.
    """
    output = task_dataset(out_url)
    config = WriterConfig(chunk_steps=writer["chunk_steps"], compress_level=writer["compress_level"],
                          shard_max_bytes=2**62, shard_max_age_s=1e12)  # one shard, committed at the end
    slots = {episode: slot for slot, episode in enumerate(episodes)}
    next_chunk: dict[tuple[int, str], int] = dict.fromkeys(slots, 0)
    waiting: dict[tuple[int, str], dict[int, Any]] = defaultdict(dict)
    finished: set[tuple[int, str]] = set()
    fields = list(output.spec.fields)
    # Not a `with` block: leaving it on an error would commit the rows written so far (the writer's
    # crash-safety for collectors); a failed task here must leave no shard behind.
    out = EpisodeWriter(out_url, output.card, config, writer_id=writer_id)
    for source, url, record, keys in reads:
        dataset = task_dataset(url)
        for chunk in dataset.iter_shard(CommitRecord.from_json(record), keys=set(keys)):
            episode = (source, chunk.row.episode)
            waiting[episode][chunk.row.chunk] = chunk
            while next_chunk[episode] in waiting[episode]:
                ready = waiting[episode].pop(next_chunk[episode])
                slot, row = slots[episode], ready.row
                for t in range(row.steps):
                    out.add_step({name: ready.arrays[name][t] for name in fields}, slot, row.policy,
                                 row.policy_version)
                next_chunk[episode] += 1
                if row.is_last:
                    finished.add(episode)
    unfinished = sorted(set(slots) - finished)
    if unfinished:
        raise DatasetError(f"episodes {[e for _, e in unfinished][:5]} were not found whole in their source "
                           "shards (a source changed since the plan was made?)", root=out_url)
    record = out.commit()
    assert record is not None
    return {"name": record.name, "bytes": record.bytes, "steps": record.steps, "samples": len(record.samples),
            "episodes": len({row.episode for row in record.samples})}


def _writer_prefix(recipe: Recipe) -> str:
    name = "".join(ch if ch.isalnum() else "_" for ch in recipe.name)[:24] or "corpus"
    return f"{name}_{secrets.token_hex(3)}"


def write_split(name: str, url: str, candidates: list[Candidate], sources: dict[int, Source], recipe: Recipe,
                runner: Runner, prefix: str) -> list[dict[str, Any]]:
    items = []
    for g, group in enumerate(groups_of(candidates, sources, recipe)):
        needed: dict[tuple[int, int], list[str]] = defaultdict(list)
        for c in group:
            for r, key in c.chunks:
                needed[(c.source, r)].append(key)
        reads = [(s, task_url(sources[s].url), sources[s].records[r].to_json(), keys)
                 for (s, r), keys in sorted(needed.items())]
        episodes = [(c.source, c.episode.id) for c in group]
        writer = {"chunk_steps": recipe.output.chunk_steps, "compress_level": recipe.output.compress_level}
        items.append((task_url(url), reads, episodes, f"{prefix}_{name[0]}{g:05d}", writer))
    results: list[dict[str, Any]] = [{}] * len(items)
    for index, result in runner.map(write_task, items, desc=f"writing {name}"):
        results[index] = result
    return results


# -- the whole build ----------------------------------------------------------------------------------


@dataclass
class Plan:
    """Stages 1-3: what can be known from the recipe, the cards and the commit records."""

    recipe: Recipe
    where: str
    recipe_sha256: str
    sources: list[Source]
    output: Dataset


def prepare(recipe: Recipe, where: str = "recipe", recipe_sha256: str = "") -> Plan:
    """Open the sources and plan from their commit records, in this process: every error that a
    recipe can cause without reading a shard is raised here, before a cluster starts."""
    sources = open_sources(recipe, where)
    output = check_output_free(recipe.output.url, where)
    for source in sources:
        plan_source(source, recipe, where)
    if recipe.mixture is not None:  # feasibility before the scan (dedup can only shrink the pools)
        select(sources, recipe, where)
    return Plan(recipe, where, recipe_sha256, sources, output)


def build(plan: Plan, runner: Runner, dry_run: bool = False) -> dict[str, Any]:
    """Stages 4-6; -> a summary (counts per source, label and split; shards written)."""
    started = time.perf_counter()
    recipe, where, sources = plan.recipe, plan.where, plan.sources
    val_url = f"{recipe.output.url.rstrip('/')}/{VALIDATION}"
    urls = {"train": recipe.output.url, VALIDATION: val_url}
    scan(sources, recipe, runner)
    duplicates = dedup(sources) if recipe.dedup else 0
    chosen = select(sources, recipe, where)
    splits = split(chosen, recipe)
    for source in sources:
        mine = [c for c in chosen if c.source == source.index]
        source.counts["selected"] = len(mine)
        source.counts["selected_steps"] = sum(c.steps for c in mine)
    by_split = {name: counts_of(cands) for name, cands in splits.items() if cands or name == "train"}
    summary: dict[str, Any] = redact_tree({  # a report and the lineage: URLs without their credentials
        "recipe": recipe.name,
        "output": recipe.output.url,
        "sources": [{"name": s.name, "url": s.url, "label": s.label, "env": s.dataset.card.env_id, **s.counts}
                    for s in sources],
        "duplicates": duplicates,
        "counts": counts_of(chosen),
        "splits": {name: {"url": urls[name], **counts} for name, counts in by_split.items()},
    })
    if dry_run:
        summary["seconds"] = time.perf_counter() - started
        return summary
    first = sources[0].dataset.card
    envs = sorted({s.dataset.card.env_id for s in sources})
    presets = sorted({s.dataset.card.preset for s in sources})
    lineage = {
        "kind": "corpus",
        "recipe": redact_tree(recipe_json(recipe)),
        "recipe_sha256": plan.recipe_sha256,
        "sources": summary["sources"],
        "duplicates": duplicates,
        "counts": summary["counts"],
        "splits": summary["splits"],
    }
    for name in by_split:  # the cards first: each one says what its split will hold once complete
        card = DatasetCard.create(
            first.spec, env_id=envs[0] if len(envs) == 1 else ",".join(envs),
            preset=presets[0] if len(presets) == 1 else "", env_config=first.env_config if len(envs) == 1 else {},
            description=recipe.description or f"corpus {recipe.name} ({name} split)",
            reference_scores=recipe.reference_scores,
            lineage={**lineage, "split": name,
                     "expected": {"episodes": by_split[name]["episodes"], "steps": by_split[name]["steps"]}},
        )
        target = plan.output if name == "train" else Dataset(urls[name])
        ensure_card(target.fs, target.root, card, url=urls[name])
    prefix = _writer_prefix(recipe)
    by_index = {s.index: s for s in sources}
    written: dict[str, list[dict[str, Any]]] = {}
    for name in by_split:
        written[name] = write_split(name, urls[name], splits[name], by_index, recipe, runner, prefix)
        got = (sum(r["episodes"] for r in written[name]), sum(r["steps"] for r in written[name]))
        want = (by_split[name]["episodes"], by_split[name]["steps"])
        if got != want:
            raise DatasetError(f"{name} split: wrote {got[0]} episodes / {got[1]} steps, planned {want[0]} / "
                               f"{want[1]}: the corpus is incomplete; delete it and build again", root=urls[name])
    for name, results in written.items():
        summary["splits"][name].update(shards=len(results), bytes=sum(r["bytes"] for r in results))
    summary["seconds"] = time.perf_counter() - started
    return summary


def run_corpus(recipe: Recipe, config: ClusterConfig, where: str = "recipe", recipe_sha256: str = "",
               dry_run: bool = False) -> dict[str, Any]:
    """Plan in this process (errors before any cluster starts), then scan and write on the cluster."""
    plan = prepare(recipe, where, recipe_sha256)
    with open_runner(config) as runner:
        return build(plan, runner, dry_run)
