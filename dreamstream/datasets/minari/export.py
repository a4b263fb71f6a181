"""`export_minari`: the complete episodes of a dreamstream dataset as a Minari dataset (arrow format).

Written with Minari's own storage API (MinariStorage.new, update_metadata, update_episodes,
update_episode_metadata). The arrow format, not hdf5: Minari 0.5.3's hdf5 writer JPEG-encodes every
uint8 array of 2 to 4 axes (MiniGrid's 7x7x3 grids too) but decodes JPEG only for image spaces of at
least 32x32, so small categorical grids would come back as JPEG bytes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import gymnasium
import minari
from gymnasium.envs.registration import EnvSpec
from minari.dataset.minari_dataset import parse_dataset_id
from minari.dataset.minari_storage import MinariStorage
from minari.namespace import create_namespace, list_local_namespaces
from minari.storage.datasets_root_dir import get_dataset_path

from dreamstream.datasets.card import DatasetCard
from dreamstream.datasets.minari.rows import to_buffer
from dreamstream.datasets.minari.spaces import IMAGES, action_space, observation_space
from dreamstream.datasets.reader import Dataset
from dreamstream.datasets.selection import Episodes
from dreamstream.errors import UserError
from dreamstream.redact import redact

log = logging.getLogger(__name__)

DATA_FORMAT = "arrow"
METADATA_KEY = "dreamstream"
"""The key of dreamstream's own facts in a Minari dataset's metadata (the card's env, spec and provenance) and
in each episode's metadata (its dreamstream episode id and policy), which import reads back."""
ENV_PLUGINS = ("ale_py", "minigrid")
"""Packages that register their env ids with gymnasium on import (ALE/..., MiniGrid-..., BabyAI-...)."""


@dataclass(frozen=True)
class Exported:
    path: Path  # the Minari dataset's folder (holding data/)
    episodes: int
    steps: int
    skipped: int  # partial episodes and episodes of a single row (no step to record)


@contextlib.contextmanager
def minari_root(root: str | os.PathLike | None) -> Iterator[None]:
    """Minari reads its datasets root from MINARI_DATASETS_PATH; `root` (if given) is that root meanwhile."""
    if root is None:
        yield
        return
    before = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = os.fspath(Path(root).resolve())
    try:
        yield
    finally:
        if before is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = before


def env_spec_of(card: DatasetCard) -> EnvSpec | None:
    """The registered gymnasium spec of the card's env, with the card's `make_kwargs`; None if unregistered.

    It names the underlying env (what `recover_environment` makes); dreamstream's own preprocessing (frame
    skip, resizing, MiniGrid's categorical view) is the card's env config, kept under METADATA_KEY.
    """
    for plugin in ENV_PLUGINS:
        with contextlib.suppress(ImportError):
            importlib.import_module(plugin)
    try:
        spec = gymnasium.spec(card.env_id)
    except gymnasium.error.Error:
        return None
    make_kwargs = card.env_config.get("make_kwargs") or {}
    return dataclasses.replace(spec, kwargs={**spec.kwargs, **make_kwargs})


def export_minari(url: str, dataset_id: str, out: str | os.PathLike | None = None, images: str = "jpeg") -> Exported:
    """Write the complete episodes of the dataset at `url` as Minari dataset `dataset_id` under the Minari
    datasets root `out` (default: Minari's own, MINARI_DATASETS_PATH or ~/.minari/datasets), image fields
    declared as `images` says (spaces.IMAGES)."""
    try:
        parse_dataset_id(dataset_id)
    except (ValueError, AssertionError) as exc:
        raise UserError(f"--dataset-id {dataset_id!r} is not a Minari id (NAMESPACE/ENV/NAME-vN): {exc}") from None
    if images not in IMAGES:
        raise UserError(f"images {images!r} is not one of {IMAGES}")
    dataset = Dataset(url)
    card = dataset.card
    episodes = dataset.episodes(lengths=(2, None))  # complete ones with a step (a single row holds none)
    with minari_root(out):
        path = get_dataset_path(dataset_id)
        if path.exists():
            raise UserError(f"a Minari dataset {dataset_id!r} already exists at {path}")
        namespace = parse_dataset_id(dataset_id)[0]
        if namespace is not None and namespace not in list_local_namespaces():
            create_namespace(namespace)
        (path / "data").mkdir(parents=True)
        try:
            _write(path / "data", dataset_id, dataset, card, episodes, images)
        except BaseException:
            shutil.rmtree(path)  # no half-written dataset under the id
            raise
    skipped = len(dataset.episodes(outcome="any")) - len(episodes)  # informational: a live dataset grows
    if skipped:
        log.info("left out %d partial or single-row episodes", skipped)
    return Exported(path=path, episodes=len(episodes), steps=episodes.steps - len(episodes), skipped=skipped)


def _write(data_path: Path, dataset_id: str, dataset: Dataset, card: DatasetCard, episodes: Episodes,
           images: str) -> None:
    """The Minari dataset's files in `data_path`, decoding one episode at a time."""
    observations = observation_space(card.spec, images)
    storage = MinariStorage.new(data_path, observation_space=observations,
                                action_space=action_space(card.spec.action), env_spec=env_spec_of(card),
                                data_format=DATA_FORMAT)
    scores = card.reference_scores
    policies = sorted({p for e in episodes.entries for p in e.policies})
    storage.update_metadata({
        **({} if scores is None else {"ref_min_score": scores.random, "ref_max_score": scores.expert}),
        "dataset_id": dataset_id,
        "minari_version": minari.__version__,
        "algorithm_name": "dreamstream policies " + ", ".join(policies),
        "description": card.description or f"exported from the dreamstream dataset {redact(dataset.url)}",
        METADATA_KEY: {"env_id": card.env_id, "preset": card.preset, "env_config": card.env_config,
                       "spec": card.spec.to_json(), "source": redact(dataset.url)},
    })
    storage.update_episodes(to_buffer(e.arrays, card.spec, observations, i) for i, e in enumerate(episodes))
    storage.update_episode_metadata(
        [{METADATA_KEY: {"episode": e.id, "policy": e.policy, "policy_version": e.policy_version}}
         for e in episodes.entries], range(len(episodes)))
