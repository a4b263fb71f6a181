"""Versioned torch files under a URL with a `latest.json` pointer: checkpoints and policy snapshots.

    <url>/<prefix>-<version:09d>.pt   torch.save payload, read back with torch.load(weights_only=True)
    <url>/latest.json                 {"version": N, "path": "<prefix>-<version>.pt"}, rewritten last

The file is committed whole before the pointer moves, so a reader (a collector polling snapshots, a
resumed trainer) never sees a partial file; older files beyond `keep` are pruned after the pointer moves.
This is the layout collectors poll (dreamstream.collect.snapshot); dreamstream.pointer reads and writes the
pointer for both.
"""

from __future__ import annotations

import io
import logging
import re
from typing import Any

import torch

from dreamstream.datasets.storage import commit_bytes, list_names, open_fs, replace_bytes
from dreamstream.errors import UserError
from dreamstream.pointer import POINTER, encode_pointer, read_pointer

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
        name = f"{self.prefix}-{version:09d}.pt"
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
        path = f"{self.root}/{self.prefix}-{version:09d}.pt"
        try:
            raw = self.fs.cat_file(path)
        except FileNotFoundError as exc:
            raise UserError(f"{self.url}: version {version} is missing ({path})") from exc
        try:
            return torch.load(io.BytesIO(raw), weights_only=True, map_location=map_location)
        except Exception as exc:  # torch raises several types for damaged or disallowed files
            raise UserError(f"{self.url}/{self.prefix}-{version:09d}.pt cannot be loaded: {exc}") from exc

    def _prune(self) -> None:
        versions = sorted(
            int(m.group(1)) for name in list_names(self.fs, self.root) if (m := self._pattern.match(name))
        )
        for version in versions[: -self.keep] if self.keep > 0 else []:
            path = f"{self.root}/{self.prefix}-{version:09d}.pt"
            try:
                self.fs.rm_file(path)
            except FileNotFoundError:
                pass
            log.debug("pruned %s", path)
