"""Which versioned file a location means: a `.pt` file, a folder with a `latest.json`, or a run folder.

    <run>/checkpoints/latest.json -> checkpoint-<step>.pt    (the whole agent: preferred)
    <run>/snapshots/latest.json   -> policy-<step>.pt        (acting weights only)

`dreamstream dream` and the dream API take any of these; this module is the one place that resolves them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from fsspec import AbstractFileSystem

from dreamstream.datasets.storage import open_fs
from dreamstream.errors import UserError
from dreamstream.versioned.files import load_torch
from dreamstream.versioned.pointer import POINTER, read_pointer

log = logging.getLogger(__name__)

CHECKPOINTS, SNAPSHOTS = "checkpoints", "snapshots"
"""The folders of a run that hold versioned files (the trainer's RunPaths names them the same)."""


@dataclass(frozen=True)
class Located:
    """One file: its filesystem, its path there, and its URL (what messages show)."""

    fs: AbstractFileSystem
    path: str
    url: str

    def load(self, what: str) -> Any:
        """Its payload (on the CPU), read as untrusted input; `what` names the kind of file in errors."""
        try:
            raw = self.fs.cat_file(self.path)
        except FileNotFoundError as exc:
            raise UserError(f"no {what} at {self.url}: the file does not exist") from exc
        return load_torch(raw, self.url, what)


def latest_file(fs: AbstractFileSystem, folder: str, shown: str) -> Located | None:
    """The file that `folder`'s pointer names (`shown`: the folder's URL); None when it has no pointer."""
    pointer = read_pointer(fs, folder, shown)
    if pointer is None:
        return None
    return Located(fs, f"{folder}/{pointer.path}", f"{shown}/{pointer.path}")


def locate(url: str, storage_options: dict[str, Any] | None = None) -> Located:
    """The file `url` means: itself when it ends in `.pt`, else the latest file of the folder's pointer, else
    of its `checkpoints/`, else of its `snapshots/` (a run folder). UserError when there is none."""
    url = url.rstrip("/")
    fs, root = open_fs(url, storage_options)
    if root.endswith(".pt"):
        if not fs.exists(root):
            raise UserError(f"no checkpoint at {url}: the file does not exist")
        return Located(fs, root, url)
    for sub in ("", f"/{CHECKPOINTS}", f"/{SNAPSHOTS}"):
        found = latest_file(fs, f"{root}{sub}", f"{url}{sub}")
        if found is None:
            continue
        if sub == f"/{SNAPSHOTS}":
            log.warning("%s has no checkpoints, only policy snapshots (no decoders)", url)
        return found
    raise UserError(f"no checkpoint at {url}: expected a .pt file, a folder with {POINTER}, or a run folder "
                    f"with {CHECKPOINTS}/ or {SNAPSHOTS}/")
