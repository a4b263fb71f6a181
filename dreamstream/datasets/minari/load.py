"""`import_minari`: a local Minari dataset (by id or path) as a dreamstream dataset, via `minari`'s reader.

A Minari dataset on disk is untrusted input. Before Minari parses it: metadata.json is size-bounded and must
declare both spaces (otherwise Minari would `gym.make` the env its env_spec names, running code the file
chooses), every declared shape is bounded as dreamstream's spec bounds shapes, and each episode's declared
step count times its row size must fit MAX_EPISODE_BYTES before the episode is decoded. After decoding,
every array is checked against the declared spaces (lengths, shapes, class ranges).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import minari
import numpy as np
from gymnasium import spaces
from gymnasium.envs.registration import EnvSpec
from minari.serialization import deserialize_space

from dreamstream.datasets.card import CARD_NAME, MAX_TEXT, DatasetCard
from dreamstream.datasets.errors import DatasetError
from dreamstream.datasets.minari.export import METADATA_KEY
from dreamstream.datasets.minari.rows import from_episode
from dreamstream.datasets.minari.spaces import spec_from_minari
from dreamstream.datasets.records import INDEX, SHARDS
from dreamstream.datasets.schema import SchemaError, load_json
from dreamstream.datasets.scores import ReferenceScores
from dreamstream.datasets.spec import MAX_DIM, MAX_FIELDS, MAX_NDIM, MAX_ROW_ELEMENTS, EpisodeSpec, SpecError
from dreamstream.datasets.storage import open_fs
from dreamstream.datasets.writer import EpisodeWriter, WriterConfig
from dreamstream.errors import UserError

MAX_METADATA_BYTES = 2**20
MAX_EPISODES = 2**24
MAX_EPISODE_BYTES = 2**32
"""Largest decoded episode accepted (declared steps x bytes per row): Minari decodes one episode whole."""
DATA_FORMATS = ("arrow", "parquet", "hdf5")
MAX_SPACE_DEPTH = 4
MAX_SPACE_ELEMENTS = 4 * 2**24
"""Most elements per step of a declared space (gymnasium allocates its bounds when it is deserialized)."""


@dataclass(frozen=True)
class Imported:
    dataset_id: str
    episodes: int
    steps: int  # dreamstream rows (Minari steps + one first row per episode)


def locate(source: str) -> Path:
    """The `data/` folder of a Minari dataset: `source` is a path (the dataset's folder or its data/), else an
    id in the local Minari datasets root (MINARI_DATASETS_PATH or ~/.minari/datasets)."""
    path = Path(source)
    if not path.exists():
        from minari.storage.datasets_root_dir import get_dataset_path

        path = get_dataset_path(source)
        if not path.exists():
            raise UserError(f"no Minari dataset {source!r}: not a path, and not an id under {path.parent}")
    if (path / "data").is_dir():
        path = path / "data"
    if not (path / "metadata.json").is_file():
        raise UserError(f"{path} holds no Minari dataset (no metadata.json)")
    return path


def read_metadata(data_path: Path) -> dict[str, Any]:
    """metadata.json, checked as far as dreamstream relies on it before Minari reads it."""
    where = f"Minari dataset {data_path}"
    try:
        with open(data_path / "metadata.json", "rb") as f:
            metadata = load_json(f.read(MAX_METADATA_BYTES + 1), MAX_METADATA_BYTES)
        if not isinstance(metadata, dict):
            raise SchemaError("", "metadata.json is not a JSON object")
        for key in ("observation_space", "action_space"):
            if not isinstance(metadata.get(key), str):
                raise SchemaError(key, "missing: the dataset must declare its spaces (dreamstream does not make "
                                       "the env its env_spec names to find them)")
            _check_space(load_json(metadata[key].encode(), MAX_METADATA_BYTES), key)
        if metadata.get("data_format") not in DATA_FORMATS:
            raise SchemaError("data_format", f"{metadata.get('data_format')!r} is not one of {DATA_FORMATS}")
        for key in ("dataset_id", "minari_version"):
            if not isinstance(metadata.get(key), str) or len(metadata[key]) > MAX_TEXT:
                raise SchemaError(key, "missing or not a short string")
        episodes = metadata.get("total_episodes")
        if type(episodes) is not int or not 0 <= episodes <= MAX_EPISODES:
            raise SchemaError("total_episodes", f"{episodes!r} is not an episode count 0..{MAX_EPISODES}")
    except SchemaError as exc:
        raise DatasetError(f"{where}: metadata.json: {exc}") from None
    return metadata


def _check_space(space: Any, key: str, depth: int = 0) -> int:
    """A serialized space (minari.serialization) of bounded size -> its elements per step: shapes as a FieldSpec
    allows, at most MAX_SPACE_DEPTH levels of Dict/Tuple of at most MAX_FIELDS entries, MAX_SPACE_ELEMENTS in
    all. Kinds that cannot map (nested ones included) are named later, by spec_from_minari."""
    if not isinstance(space, dict) or not isinstance(space.get("type"), str):
        raise SchemaError(key, "not a serialized space")
    total = 0
    if space["type"] in ("Dict", "Tuple"):
        subspaces = space.get("subspaces")
        if depth >= MAX_SPACE_DEPTH or not isinstance(subspaces, dict | list) or len(subspaces) > MAX_FIELDS:
            raise SchemaError(key, f"a {space['type']} space nested over {MAX_SPACE_DEPTH} levels, or with more "
                                   f"than {MAX_FIELDS} subspaces")
        values = subspaces.items() if isinstance(subspaces, dict) else enumerate(subspaces)
        total = sum(_check_space(subspace, f"{key}.{name}", depth + 1) for name, subspace in values)
    shape = space.get("shape", [])
    if "nvec" in space:
        shape = np.shape(space["nvec"]) if isinstance(space["nvec"], list) else [MAX_DIM + 1]
    if (not isinstance(shape, list | tuple) or len(shape) > MAX_NDIM
            or not all(type(d) is int and 0 <= d <= MAX_DIM for d in shape) or math.prod(shape) > MAX_ROW_ELEMENTS):
        raise SchemaError(key, f"shape {shape!r} is not at most {MAX_NDIM} axes of 0..{MAX_DIM}, "
                               f"{MAX_ROW_ELEMENTS} elements")
    total += math.prod(shape)
    if total > MAX_SPACE_ELEMENTS:
        raise SchemaError(key, f"more than {MAX_SPACE_ELEMENTS} elements per step")
    return total


def card_facts(metadata: dict[str, Any]) -> dict[str, Any]:
    """The card's env id, preset and env config: dreamstream's own (a dataset dreamstream exported) or, for
    any other dataset, from the env spec (id, make kwargs, step limit) so that evaluation can make the env."""
    ours = metadata.get(METADATA_KEY)
    if isinstance(ours, dict) and isinstance(ours.get("env_id"), str) and isinstance(ours.get("env_config"), dict):
        return {"env_id": ours["env_id"], "preset": str(ours.get("preset", "")), "env_config": ours["env_config"]}
    raw = metadata.get("env_spec")
    if not isinstance(raw, str):
        return {"env_id": metadata["dataset_id"], "preset": "", "env_config": {}}
    try:
        spec = EnvSpec.from_json(raw)  # parses JSON only: imports and makes nothing
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise DatasetError(f"Minari dataset {metadata['dataset_id']}: metadata.json: env_spec: {exc}") from None
    config: dict[str, Any] = {"id": spec.id, "make_kwargs": dict(spec.kwargs)}
    if spec.max_episode_steps is not None:
        config["time_limit"] = int(spec.max_episode_steps)
    return {"env_id": spec.id, "preset": "", "env_config": config}


def exported_spec(derived: EpisodeSpec, ours: Any, where: str) -> EpisodeSpec:
    """The spec a dreamstream export recorded (field kinds and order: gymnasium's Dict sorts keys, and exact
    images are MultiDiscrete spaces), if it agrees with the spaces on every name, shape, dtype and the action;
    else the spec derived from the spaces."""
    recorded = ours.get("spec") if isinstance(ours, dict) else None
    if recorded is None:
        return derived
    try:
        spec = EpisodeSpec.from_json(recorded, f"{METADATA_KEY}.spec")
    except SchemaError as exc:
        raise DatasetError(f"{where}: metadata.json: {exc}") from None
    same = (spec.observations.keys() == derived.observations.keys() and spec.action == derived.action
            and all((f.shape, f.dtype) == (derived.observations[n].shape, derived.observations[n].dtype)
                    for n, f in spec.observations.items()))
    return spec if same else derived


def reference_scores(metadata: dict[str, Any]) -> ReferenceScores | None:
    """Minari's ref_min_score / ref_max_score (random and expert returns) as the card's reference scores."""
    low, high = metadata.get("ref_min_score"), metadata.get("ref_max_score")
    if low is None or high is None:
        return None
    try:
        return ReferenceScores.from_json({"random": low, "expert": high}, "ref_min_score/ref_max_score")
    except SchemaError as exc:
        raise DatasetError(f"Minari dataset {metadata['dataset_id']}: metadata.json: {exc}") from None


def row_bytes(spec: EpisodeSpec) -> int:
    return sum(math.prod(f.shape) * np.dtype(f.dtype).itemsize for f in spec.fields.values())


def import_minari(source: str, out: str, drop: frozenset[str] = frozenset(),
                  config: WriterConfig | None = None) -> Imported:
    """Write every episode of the Minari dataset `source` (id or path) as a new dreamstream dataset at `out`,
    leaving out the observation keys in `drop` (a MiniGrid mission string, say)."""
    data_path = locate(source)
    metadata = read_metadata(data_path)
    dataset_id = metadata["dataset_id"]
    where = f"Minari dataset {dataset_id}"
    try:
        observation, action = (deserialize_space(metadata[key]) for key in ("observation_space", "action_space"))
    except (ValueError, TypeError, KeyError, AssertionError, NotImplementedError) as exc:
        raise DatasetError(f"{where}: metadata.json: a space that does not parse: {exc!r}") from None
    try:
        spec = spec_from_minari(observation, action, drop)
    except SpecError as exc:
        droppable = isinstance(observation, spaces.Dict) and not str(exc).startswith("field 'action'")
        hint = " (leave an observation key out with --drop-field KEY)" if droppable and not drop else ""
        raise SpecError(f"{where}: {exc}{hint}") from None
    spec = exported_spec(spec, metadata.get(METADATA_KEY), where)
    fs, root = open_fs(out)
    if fs.exists(f"{root}/{CARD_NAME}"):
        raise UserError(f"{out} already holds a dataset: import into a new location")
    try:
        dataset = minari.MinariDataset(os.fspath(data_path))
    except (ValueError, KeyError, AssertionError, OSError) as exc:
        raise DatasetError(f"{where}: Minari cannot open it: {exc}") from None
    card = DatasetCard.create(spec, description=f"imported from Minari dataset {dataset_id}",
                              lineage={"kind": "import", "sources": [{"name": dataset_id, "url": str(data_path),
                                                                      "format": "minari"}]},
                              reference_scores=reference_scores(metadata), **card_facts(metadata))
    try:
        rows = _write(dataset, EpisodeWriter(out, card, config), spec, drop, where)
    except BaseException:
        _remove_dataset(fs, root)  # a failed import leaves no dataset behind (the location was new)
        raise
    return Imported(dataset_id=dataset_id, episodes=len(dataset), steps=rows)


def _write(dataset: minari.MinariDataset, writer: EpisodeWriter, spec: EpisodeSpec, drop: frozenset[str],
           where: str) -> int:
    """Every episode of `dataset` through `writer`, one decoded episode at a time -> the rows written."""
    per_row = row_bytes(spec)
    rows = 0
    with writer:
        for index in range(len(dataset)):
            episode_meta = _episode_metadata(dataset, index, where)
            steps = int_or(episode_meta.get("total_steps"), -1)
            if not 0 <= steps or (steps + 1) * per_row > MAX_EPISODE_BYTES:
                declared = episode_meta.get("total_steps")
                raise DatasetError(f"{where}: episode {index} declares {declared!r} steps; at most "
                                   f"{MAX_EPISODE_BYTES // per_row - 1} fit {MAX_EPISODE_BYTES} bytes")
            try:
                (episode,) = dataset.iterate_episodes([index])
            except Exception as exc:  # noqa: BLE001  pyarrow, h5py, PIL: whatever a damaged file raises
                raise DatasetError(f"{where}: episode {index} cannot be read: {type(exc).__name__}: {exc}") from None
            arrays = from_episode(episode, spec, steps, f"{where}, episode {index}", drop)
            ours = episode_meta.get(METADATA_KEY)
            policy = ours if isinstance(ours, dict) else {}
            name, version = policy.get("policy"), int_or(policy.get("policy_version"), 0)
            writer.add_episode(arrays, policy=name if isinstance(name, str) and len(name) <= MAX_TEXT else "minari",
                               policy_version=max(version, 0))
            rows += steps + 1
    return rows


def _remove_dataset(fs: Any, root: str) -> None:
    """Uncommit and delete what an import wrote: commit records first, then shards, then the card."""
    for part in (INDEX, SHARDS):
        if fs.exists(f"{root}/{part}"):
            fs.rm(f"{root}/{part}", recursive=True)
    if fs.exists(f"{root}/{CARD_NAME}"):
        fs.rm(f"{root}/{CARD_NAME}")


def int_or(value: Any, default: int) -> int:
    """An exact integer (hdf5 attributes come back as NumPy ones), else `default`."""
    return int(value) if isinstance(value, int | np.integer) and not isinstance(value, bool) else default


def _episode_metadata(dataset: minari.MinariDataset, index: int, where: str) -> dict[str, Any]:
    try:
        (meta,) = dataset.storage.get_episode_metadata([index])
    except Exception as exc:  # noqa: BLE001  json, h5py: whatever a damaged file raises
        raise DatasetError(f"{where}: episode {index}: its metadata cannot be read: {type(exc).__name__}: "
                           f"{exc}") from None
    if not isinstance(meta, dict):
        raise DatasetError(f"{where}: episode {index}: its metadata is not an object")
    return meta
