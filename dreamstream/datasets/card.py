"""The dataset card `ROOT/dataset.json`: format version, environment, field spec, provenance, lineage."""

from __future__ import annotations

import getpass
import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import fsspec

from dreamstream.datasets.errors import DatasetError
from dreamstream.datasets.schema import Obj, SchemaError, describe, load_json, read_bounded
from dreamstream.datasets.scores import ReferenceScores
from dreamstream.datasets.spec import EpisodeSpec
from dreamstream.datasets.storage import AlreadyExists, commit_bytes

FORMAT = "dreamstream.episodes"
# Versioning rule (docs/format.md): readers accept their own major version; a new major version is a
# change that old readers would misread. Additive fields in the card or meta do not change it.
FORMAT_VERSION = 1
CARD_NAME = "dataset.json"
MAX_CARD_BYTES = 2**20
MAX_DESCRIPTION = 2**16
MAX_TEXT = 256


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class DatasetCard:
    """What a dataset holds and where it came from. `spec` is the contract every sample obeys."""

    spec: EpisodeSpec
    env_id: str
    preset: str = ""
    env_config: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    creator: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    lineage: dict[str, Any] | None = None
    reference_scores: ReferenceScores | None = None
    """Random and expert returns on the task (datasets.scores.normalised_score); a corpus recipe sets them."""
    format_version: int = FORMAT_VERSION

    @classmethod
    def create(cls, spec: EpisodeSpec, env_id: str, **kwargs: Any) -> DatasetCard:
        """A new card stamped with the creating host, user and time."""
        from dreamstream import __version__

        creator = {"tool": f"dreamstream {__version__}", "host": socket.gethostname(), "user": getpass.getuser()}
        return cls(spec=spec, env_id=env_id, creator=creator, created=_now(), **kwargs)

    def to_json(self) -> dict[str, Any]:
        extra = {} if self.reference_scores is None else {"reference_scores": self.reference_scores.to_json()}
        return {
            "format": FORMAT,
            "version": self.format_version,
            "env": {"id": self.env_id, "preset": self.preset, "config": self.env_config},
            "spec": self.spec.to_json(),
            "description": self.description,
            "creator": self.creator,
            "created": self.created,
            "lineage": self.lineage,
            **extra,
        }

    @classmethod
    def from_json(cls, data: Any, where: str = "") -> DatasetCard:
        """A card from JSON, every value checked; DatasetError naming the root and the key."""
        try:
            return cls._parse(data)
        except SchemaError as exc:
            raise DatasetError(f"{CARD_NAME} is malformed: {exc}", root=where) from None

    @classmethod
    def _parse(cls, data: Any) -> DatasetCard:
        obj = Obj(data)
        if obj.get("format", None) != FORMAT:
            raise SchemaError("format", f"{describe(obj.get('format', None))} is not {FORMAT!r}: "
                                        "not a dreamstream dataset card")
        version = obj.get("version", None)
        if type(version) is not int or version != FORMAT_VERSION:
            raise SchemaError("version", f"format version {describe(version)}; this reader supports version "
                                         f"{FORMAT_VERSION} (see docs/format.md, 'Versioning')")
        env = obj.obj("env")
        lineage = obj.get("lineage", None)
        if lineage is not None:
            Obj(lineage, "lineage")
        scores = obj.get("reference_scores", None)
        return cls(
            spec=EpisodeSpec.from_json(obj.get("spec"), "spec"),
            env_id=env.string("id", MAX_TEXT),
            preset=env.string("preset", MAX_TEXT, default=""),
            env_config=env.obj("config", {}).value,
            description=obj.string("description", MAX_DESCRIPTION, default=""),
            creator=obj.obj("creator", {}).value,
            created=obj.string("created", 64, default=""),
            lineage=lineage,
            reference_scores=None if scores is None else ReferenceScores.from_json(scores),
            format_version=version,
        )


def parse_card(raw: bytes, where: str = "") -> DatasetCard:
    """A card from the bytes of `dataset.json`; DatasetError naming the root (`where`) and the key."""
    try:
        data = load_json(raw, MAX_CARD_BYTES)
    except SchemaError as exc:
        raise DatasetError(f"{CARD_NAME} is malformed: {exc}", root=where) from None
    return DatasetCard.from_json(data, where)


def read_card(fs: fsspec.AbstractFileSystem, root: str, url: str = "") -> DatasetCard:
    """The dataset's card, read (at most MAX_CARD_BYTES of it) and checked."""
    try:
        raw = read_bounded(fs, f"{root}/{CARD_NAME}", MAX_CARD_BYTES)
    except FileNotFoundError as exc:
        raise DatasetError(f"no {CARD_NAME}: not a dreamstream dataset (or nothing committed yet)",
                           root=url or root) from exc
    except SchemaError as exc:
        raise DatasetError(f"{CARD_NAME} is malformed: {exc}", root=url or root) from None
    return parse_card(raw, url or root)


def ensure_card(fs: fsspec.AbstractFileSystem, root: str, card: DatasetCard, url: str = "") -> DatasetCard:
    """Create the dataset's card, or join the dataset if its card has the same spec; -> the card in force.

    Create-then-verify (docs/format.md, "Creating the card"): the create is conditional where the store
    offers it (hard link on local disk, If-None-Match on S3, ifGenerationMatch=0 on GCS), then the card is
    always read back, because a store that ignores the condition lets a second writer replace the card.
    A card with another spec is a DatasetError naming the root; `check_card` repeats the check later.
    """
    path = f"{root}/{CARD_NAME}"
    if not fs.exists(path):
        try:
            commit_bytes(fs, path, json.dumps(card.to_json(), indent=2).encode())
        except AlreadyExists:
            pass  # another writer created it first: its card must have our spec
    existing = read_card(fs, root, url)
    if existing.spec != card.spec:
        raise DatasetError(
            f"the dataset's card has a different spec than this writer's environment: "
            f"card {existing.spec.to_json()} vs writer {card.spec.to_json()}",
            root=url or root,
        )
    return existing


def check_card(fs: fsspec.AbstractFileSystem, root: str, card: DatasetCard, url: str = "") -> None:
    """The card at ROOT is still `card` (cards are never rewritten; on a store without conditional
    create, a racing writer may have replaced it after our read-back)."""
    if read_card(fs, root, url) != card:
        raise DatasetError(f"{CARD_NAME} changed after this writer joined the dataset: another writer "
                           "replaced it (two specs in one root); nothing more is committed", root=url or root)
