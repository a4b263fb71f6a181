"""Corpus recipes: a typed YAML description of a new dataset built from existing ones.

Every key is documented on its dataclass field (and in docs/pipelines.md). `load_recipe` reads the YAML
through dreamstream.config.from_dict, so an unknown key names the closest valid one; `check_recipe`
rejects recipes that cannot work (bad ranges, weights that do not add up, labels without a source)
before anything is read.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from dreamstream.config import ConfigError, from_dict, to_dict
from dreamstream.datasets.scores import ReferenceScores
from dreamstream.datasets.storage import resolve_location
from dreamstream.errors import UserError

# Labels in the spirit of D4RL's dataset kinds; any other label is allowed too.
KNOWN_LABELS = ("random", "medium", "expert", "replay")


class RecipeError(UserError):
    """A recipe that cannot be built; the message names the recipe and what is wrong."""


@dataclass
class FilterConfig:
    """Which episodes to keep: every condition that is set must hold. Incomplete episodes (whose last
    chunk was never committed) are always left out."""

    min_return: float | None = None
    """Keep episodes whose return is at least this."""
    max_return: float | None = None
    """Keep episodes whose return is at most this."""
    return_percentile: list[float] | None = None
    """[low, high] in 0..100: keep episodes whose return lies between these percentiles of the returns of
    their own source (computed over the source's episodes that pass the other conditions). [90, 100]
    keeps a source's best tenth."""
    min_length: int | None = None
    """Keep episodes of at least this many steps (rows)."""
    max_length: int | None = None
    """Keep episodes of at most this many steps (rows)."""
    policies: list[str] | None = None
    """Keep episodes made only by these policies: `name` (any version) or `name@version`."""
    min_policy_version: int | None = None
    """Keep episodes whose every chunk has a policy version of at least this."""
    max_policy_version: int | None = None
    """Keep episodes whose every chunk has a policy version of at most this."""
    env: list[str] | None = None
    """Keep sources whose card's env id matches one of these (shell-style patterns: `MiniGrid-*`)."""
    outcome: Literal["any", "terminated", "truncated"] = "any"
    """Keep only episodes that ended in a terminal state, or only truncated ones (time limit)."""

    def is_set(self) -> bool:
        return self != FilterConfig()


@dataclass
class SourceConfig:
    """One input dataset."""

    url: str = ""
    """Dataset URL (path, file://, s3://, gs://). Relative paths are relative to the working directory."""
    name: str = ""
    """Name used in messages and the lineage; default: the last part of the URL."""
    label: str = ""
    """Mixture label (random / medium / expert / replay, or any word); default: the name."""
    filter: FilterConfig = field(default_factory=FilterConfig)
    """Conditions for this source's episodes, on top of the recipe-wide `filter`."""


@dataclass
class MixtureConfig:
    """A labelled mixture: how much of the output comes from each label's pool of episodes."""

    weights: dict[str, float] = field(default_factory=dict)
    """Label -> weight, one per label of the sources; the weights must add up to 1."""
    unit: Literal["episodes", "steps"] = "episodes"
    """Whether the weights are fractions of episodes or of steps."""
    total: int | None = None
    """Episodes (or steps) in the output, both splits together. None: as many as the smallest pool
    allows at these weights (that pool is used whole)."""


@dataclass
class SplitConfig:
    """Train/validation split by whole episodes, within each label (so both splits keep the mixture)."""

    validation: float = 0.0
    """Fraction of each label's episodes that go to the validation split (0: no validation split)."""


@dataclass
class OutputConfig:
    """Where and how the corpus is written."""

    url: str = ""
    """URL of the new dataset; it must not exist yet. It holds the training split; the validation split
    (if any) is the dataset at `<url>/validation`."""
    shard_mib: float = 64.0
    """Target shard size in MiB (2**20 bytes): episodes are grouped into shards of about this size (an
    episode larger than that gets a shard of its own)."""
    chunk_steps: int = 1000
    """Rows per sample at most in the output (episodes are re-chunked; chunks stay in order)."""
    compress_level: int | None = 3
    """zstd level for image and categorical fields; null stores plain .npy."""


@dataclass
class Recipe:
    """A corpus recipe (see docs/pipelines.md and configs/corpora/)."""

    output: OutputConfig = field(default_factory=OutputConfig)
    """Where the corpus goes and its shard layout."""
    sources: list[SourceConfig] = field(default_factory=list)
    """Input datasets (at least one). They must share the same episode spec."""
    name: str = ""
    """Name of the corpus (card description, writer ids); default: the recipe file's name."""
    description: str = ""
    """Free text for the card."""
    filter: FilterConfig = field(default_factory=FilterConfig)
    """Conditions for every source's episodes."""
    mixture: MixtureConfig | None = None
    """Labelled mixture; None: every episode that passes the filters."""
    dedup: bool = True
    """Drop episodes whose content (every field of every row) equals an earlier episode's; the first
    source listed wins. Costs one extra read of the candidate shards."""
    split: SplitConfig = field(default_factory=SplitConfig)
    """Train/validation split."""
    seed: int = 0
    """Seed of every random choice (mixture sampling, split), so a recipe builds the same corpus again."""
    reference_scores: ReferenceScores | None = None
    """`{random: R, expert: E}`: returns of a random and an expert policy on the task, written to the
    corpus card so that returns read as normalised scores (dreamstream.datasets.normalised_score)."""


def _label_name(source: SourceConfig) -> None:
    if not source.name:
        source.name = source.url.rstrip("/").rsplit("/", 1)[-1] or source.url
    if not source.label:
        source.label = source.name


def parse_recipe(data: dict[str, Any], where: str = "recipe") -> Recipe:
    """A Recipe from a parsed YAML mapping; unknown keys and wrong types raise RecipeError."""
    if not isinstance(data, dict):
        raise RecipeError(f"{where}: expected a mapping at the top level")
    try:
        recipe = from_dict(Recipe, data)
    except ConfigError as exc:
        raise RecipeError(f"{where}: {exc}") from exc
    for source in recipe.sources:
        _label_name(source)
    check_recipe(recipe, where)
    # relative paths in a recipe mean folders under the directory the command runs in, as on a command line
    for item in (*recipe.sources, recipe.output):
        item.url = resolve_location(item.url)
    return recipe


def load_recipe(path: str | Path) -> tuple[Recipe, str]:
    """-> (recipe, sha256 of the file). Names and checks everything that can be checked without I/O."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise RecipeError(f"cannot read recipe {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML: {exc}") from exc
    if isinstance(data, dict) and not data.get("name"):
        data = {**data, "name": path.stem}
    return parse_recipe(data, str(path)), hashlib.sha256(text.encode()).hexdigest()


def _check_filter(f: FilterConfig, where: str) -> None:
    def bad(message: str) -> RecipeError:
        return RecipeError(f"{where}: impossible filter: {message}")

    if f.min_return is not None and f.max_return is not None and f.min_return > f.max_return:
        raise bad(f"min_return {f.min_return} > max_return {f.max_return}")
    if f.min_length is not None and f.max_length is not None and f.min_length > f.max_length:
        raise bad(f"min_length {f.min_length} > max_length {f.max_length}")
    if f.max_length is not None and f.max_length < 1:
        raise bad(f"max_length {f.max_length} < 1: every episode has at least one row")
    if (f.min_policy_version is not None and f.max_policy_version is not None
            and f.min_policy_version > f.max_policy_version):
        raise bad(f"min_policy_version {f.min_policy_version} > max_policy_version {f.max_policy_version}")
    if f.return_percentile is not None:
        p = f.return_percentile
        if len(p) != 2 or not 0 <= p[0] < p[1] <= 100:
            raise bad(f"return_percentile {p} must be [low, high] with 0 <= low < high <= 100")
    if f.policies is not None and not f.policies:
        raise bad("policies is an empty list: no episode could pass (leave it out to keep every policy)")
    if f.env is not None and not f.env:
        raise bad("env is an empty list: no source could pass (leave it out to keep every env)")


def check_recipe(recipe: Recipe, where: str = "recipe") -> None:
    """Everything about a recipe that can be checked without reading any dataset."""
    if not recipe.sources:
        raise RecipeError(f"{where}: no sources: list at least one dataset under `sources:`")
    if not recipe.output.url:
        raise RecipeError(f"{where}: output.url is required (where the corpus is written)")
    if recipe.output.shard_mib <= 0 or recipe.output.chunk_steps < 1:
        raise RecipeError(f"{where}: output.shard_mib and output.chunk_steps must be positive")
    names = [s.name for s in recipe.sources]
    for i, source in enumerate(recipe.sources):
        if not source.url:
            raise RecipeError(f"{where}: sources[{i}] has no url")
        _check_filter(source.filter, f"{where}: source {source.name!r}")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise RecipeError(f"{where}: source names {dupes} appear twice; give each source its own `name`")
    _check_filter(recipe.filter, f"{where}: filter")
    norm = recipe.output.url.rstrip("/")
    for source in recipe.sources:
        if source.url.rstrip("/") == norm:
            raise RecipeError(f"{where}: output.url {recipe.output.url!r} is source {source.name!r} itself")
    if not 0 <= recipe.split.validation < 1:
        raise RecipeError(f"{where}: split.validation {recipe.split.validation} must be in [0, 1)")
    mixture = recipe.mixture
    if mixture is not None:
        labels = {s.label for s in recipe.sources}
        weights = mixture.weights
        if not weights:
            raise RecipeError(f"{where}: mixture.weights is empty: give a weight to each label {sorted(labels)}")
        for label, weight in weights.items():
            if not isinstance(weight, int | float) or isinstance(weight, bool) or not weight > 0:
                raise RecipeError(f"{where}: mixture weight of {label!r} must be a number > 0, got {weight!r}")
        total = sum(weights.values())
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise RecipeError(f"{where}: mixture weights add up to {total:g}, not 1: "
                              + ", ".join(f"{k}={v:g}" for k, v in weights.items()))
        unknown = sorted(set(weights) - labels)
        if unknown:
            raise RecipeError(f"{where}: mixture labels {unknown} have no source (source labels: {sorted(labels)})")
        unweighted = sorted(labels - set(weights))
        if unweighted:
            raise RecipeError(f"{where}: source labels {unweighted} have no mixture weight "
                              f"(weights given: {sorted(weights)})")
        if mixture.total is not None and mixture.total < 1:
            raise RecipeError(f"{where}: mixture.total must be at least 1, got {mixture.total}")


def recipe_json(recipe: Recipe) -> dict[str, Any]:
    """The recipe as plain data, for the card's lineage."""
    return to_dict(recipe)
