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
from dreamstream.datasets.spec import EpisodeSpec
from dreamstream.datasets.storage import AlreadyExists, commit_bytes

FORMAT = "dreamstream.episodes"
# Versioning rule (docs/format.md): readers accept their own major version; a new major version is a
# change that old readers would misread. Additive fields in the card or meta do not change it.
FORMAT_VERSION = 1
CARD_NAME = "dataset.json"


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
    format_version: int = FORMAT_VERSION

    @classmethod
    def create(cls, spec: EpisodeSpec, env_id: str, **kwargs: Any) -> DatasetCard:
        """A new card stamped with the creating host, user and time."""
        from dreamstream import __version__

        creator = {"tool": f"dreamstream {__version__}", "host": socket.gethostname(), "user": getpass.getuser()}
        return cls(spec=spec, env_id=env_id, creator=creator, created=_now(), **kwargs)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": self.format_version,
            "env": {"id": self.env_id, "preset": self.preset, "config": self.env_config},
            "spec": self.spec.to_json(),
            "description": self.description,
            "creator": self.creator,
            "created": self.created,
            "lineage": self.lineage,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str = "") -> DatasetCard:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise DatasetError(f"not a dreamstream dataset card (format {data.get('format')!r}, expected {FORMAT!r})",
                               root=where)
        version = data.get("version")
        if version != FORMAT_VERSION:
            raise DatasetError(
                f"card has format version {version!r}; this reader supports version {FORMAT_VERSION} "
                "(see docs/format.md, 'Versioning')",
                root=where,
            )
        try:
            env = data["env"]
            return cls(
                spec=EpisodeSpec.from_json(data["spec"]),
                env_id=env["id"],
                preset=env.get("preset", ""),
                env_config=env.get("config") or {},
                description=data.get("description", ""),
                creator=data.get("creator") or {},
                created=data.get("created", ""),
                lineage=data.get("lineage"),
                format_version=version,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"card is malformed: {exc!r}", root=where) from exc


def read_card(fs: fsspec.AbstractFileSystem, root: str, url: str = "") -> DatasetCard:
    path = f"{root}/{CARD_NAME}"
    try:
        raw = fs.cat_file(path)
    except FileNotFoundError as exc:
        raise DatasetError(f"no {CARD_NAME}: not a dreamstream dataset (or nothing committed yet)",
                           root=url or root) from exc
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise DatasetError(f"{CARD_NAME} is not valid JSON: {exc}", root=url or root) from exc
    return DatasetCard.from_json(data, where=url or root)


def ensure_card(fs: fsspec.AbstractFileSystem, root: str, card: DatasetCard, url: str = "") -> DatasetCard:
    """Write the card if the dataset is new; otherwise check that the existing card has the same spec.

    Two writers starting together may both try to create it: the loser reads the winner's card.
    """
    path = f"{root}/{CARD_NAME}"
    if not fs.exists(path):
        try:
            commit_bytes(fs, path, json.dumps(card.to_json(), indent=2).encode())
            return card
        except AlreadyExists:
            pass
    existing = read_card(fs, root, url)
    if existing.spec != card.spec:
        raise DatasetError(
            f"the dataset's card has a different spec than this writer's environment: "
            f"card {existing.spec.to_json()} vs writer {card.spec.to_json()}",
            root=url or root,
        )
    return existing
