"""Versioned torch files under a URL with a `latest.json` pointer: checkpoints and policy snapshots.

    <url>/<prefix>-<version:09d>.pt   torch.save payload, read back with torch.load(weights_only=True)
    <url>/latest.json                 {"version": N, "path": "<prefix>-<version>.pt"}, rewritten last

The file is committed whole before the pointer moves, so a reader (a collector polling snapshots, a
resumed trainer) never sees a partial file; older files beyond `keep` are pruned after the pointer moves.
This is the layout collectors poll (dreamstream.collect.snapshot); dreamstream.versioned.pointer reads and
writes the pointer. Every file is untrusted: `load_torch` is the one way its bytes become a payload.
"""

from __future__ import annotations

import io
import logging
import re
from typing import Any

import torch

from dreamstream.datasets.storage import commit_bytes, list_names, open_fs, replace_bytes
from dreamstream.errors import UserError
from dreamstream.versioned.pointer import POINTER, encode_pointer, read_pointer

log = logging.getLogger(__name__)


class VersionedFiles:
    """Save and load numbered payloads under `url`."""

    def __init__(self, url: str, prefix: str, keep: int = 3, storage_options: dict[str, Any] | None = None):
        self.url = url.rstrip("/")
        self.prefix = prefix
        self.keep = keep
        self.fs, self.root = open_fs(self.url, storage_options)
        self._pattern = re.compile(rf"^{re.escape(prefix)}-(\d+)\.pt$")

    def save(self, payload: dict[str, Any], version: int) -> str:
        """Commit the payload as version `version`, move the pointer to it, prune old versions.

        Saving a version that exists already (the same step saved twice) keeps the first file."""
        name = self._name(version)
        if self.fs.exists(f"{self.root}/{name}"):
            return f"{self.url}/{name}"
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        self.fs.makedirs(self.root, exist_ok=True)
        commit_bytes(self.fs, f"{self.root}/{name}", buffer.getvalue())
        replace_bytes(self.fs, f"{self.root}/{POINTER}", encode_pointer(version, name))
        self._prune()
        return f"{self.url}/{name}"

    def latest_version(self) -> int | None:
        """The version the pointer names; None before the first save. A damaged pointer is a UserError."""
        pointer = read_pointer(self.fs, self.root, self.url)
        return None if pointer is None else pointer.version

    def load(self, version: int | None = None, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
        """The payload of `version` (default: the latest); None when nothing was saved yet."""
        if version is None:
            version = self.latest_version()
            if version is None:
                return None
        name = self._name(version)
        try:
            raw = self.fs.cat_file(f"{self.root}/{name}")
        except FileNotFoundError as exc:
            raise UserError(f"{self.url}: version {version} is missing ({self.root}/{name})") from exc
        return load_torch(raw, f"{self.url}/{name}", f"{self.prefix} file", map_location)

    def _name(self, version: int) -> str:
        return f"{self.prefix}-{version:09d}.pt"

    def _prune(self) -> None:
        versions = sorted(
            int(m.group(1)) for name in list_names(self.fs, self.root) if (m := self._pattern.match(name))
        )
        for version in versions[: -self.keep] if self.keep > 0 else []:
            path = f"{self.root}/{self._name(version)}"
            try:
                self.fs.rm_file(path)
            except FileNotFoundError:
                pass
            log.debug("pruned %s", path)


def load_torch(raw: bytes, where: str, what: str, map_location: str | torch.device = "cpu") -> Any:
    """The payload in the untrusted bytes `raw` of file `where` (a `what`: snapshot, checkpoint, ...), loaded
    with torch.load(weights_only=True): tensors, numbers, strings and containers only, never code."""
    try:
        return torch.load(io.BytesIO(raw), weights_only=True, map_location=map_location)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for damaged or disallowed files
        raise UserError(f"{where} is not a loadable {what}: it cannot be loaded with torch.load(weights_only=True): "
                        f"{exc}") from exc
