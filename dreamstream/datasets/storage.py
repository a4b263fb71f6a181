"""fsspec access and the commit primitive: a file appears whole, under its final name, or not at all.

Storage options come the usual fsspec ways (environment variables such as AWS_* / FSSPEC_S3_*, fsspec
config files, or an explicit dict); nothing here logs them.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

# gcsfs otherwise tries a gRPC layout call per operation, which hangs against HTTP endpoints and emulators
# (MEASURED.md); it must be set before gcsfs is imported, in every process.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")


class AlreadyExists(FileExistsError):
    """A commit would overwrite an existing file; writers never overwrite."""


def resolve_location(location: str) -> str:
    """A location as typed (relative or absolute path, `~/...`, `file://...`, any fsspec URL) -> the one form
    every part stores and passes on: an absolute local path, or the URL unchanged.

    Called once where a location enters (command line, config, recipe), so a relative path means the same
    folder in every process and in every file that records it (run.json, MLflow params, lineage).
    """
    location = location.strip()
    if not location:
        raise ValueError("empty location: give a path or a URL")
    if location.startswith("file://"):
        location = location[len("file://"):]
    elif "://" in location or "::" in location:  # s3://, gs://, memory://, chained (simplecache::s3://...)
        return location
    return os.path.abspath(os.path.expanduser(location))


def open_fs(url: str, storage_options: dict[str, Any] | None = None) -> tuple[fsspec.AbstractFileSystem, str]:
    """-> (filesystem, path without protocol) for a local path or any fsspec URL."""
    fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    return fs, path.rstrip("/")


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return isinstance(fs, LocalFileSystem)


def read_options(fs: fsspec.AbstractFileSystem) -> dict[str, Any]:
    """Open options for streaming whole shards: gcsfs/s3fs default caches issue one request per small read."""
    if is_local(fs):
        return {}
    return {"cache_type": "readahead", "block_size": 16 * 2**20}


def commit_bytes(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> None:
    """Write `data` to `path` so that readers see all of it or nothing; refuse to overwrite.

    Local disk: write a hidden temporary file in the same folder, fsync, then hard-link it to its final
    name (fails if that exists) — a killed writer leaves only a `.tmp-*` file that readers ignore.
    Object stores and memory: one whole-object upload, which becomes visible only when complete, made
    conditional (`mode="create"`: If-None-Match on S3, ifGenerationMatch=0 on GCS). A store that ignores
    the condition overwrites; callers that must know read back (card.ensure_card, writer retries).
    """
    if fs.exists(path):
        raise AlreadyExists(f"{path} already exists; dreamstream never overwrites a committed file")
    if not is_local(fs):
        try:
            fs.pipe_file(path, data, mode="create")
        except FileExistsError as exc:
            raise AlreadyExists(f"{path} already exists; dreamstream never overwrites a committed file") from exc
        return
    temp = _write_temp(path, data)
    try:
        os.link(temp, path)
    except FileExistsError as exc:
        raise AlreadyExists(f"{path} already exists; dreamstream never overwrites a committed file") from exc
    except OSError:  # filesystems without hard links: rename (checked for existence above)
        os.rename(temp, path)
        return
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def list_names(fs: fsspec.AbstractFileSystem, folder: str) -> list[str]:
    """Sorted base names in `folder`, re-listed (no stale listing cache), [] if the folder is absent."""
    fs.invalidate_cache(folder)
    try:
        entries = fs.ls(folder, detail=False)
    except FileNotFoundError:
        return []
    return sorted(entry.rstrip("/").rsplit("/", 1)[-1] for entry in entries)


def replace_bytes(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> None:
    """Write `data` to `path`, replacing it whole: for pointer files (`latest.json`) and a dataset's
    `stats.json`, the only files dreamstream rewrites. Readers see the old or the new content, never a mix."""
    if not is_local(fs):
        fs.pipe_file(path, data)
        return
    os.replace(_write_temp(path, data), path)


def _write_temp(path: str, data: bytes) -> str:
    """Write `data` durably to a hidden temporary file beside `path` (which readers never list)."""
    folder, name = os.path.split(path)
    os.makedirs(folder, exist_ok=True)
    temp = os.path.join(folder, f".tmp-{name}-{secrets.token_hex(4)}")
    try:
        with open(temp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:  # a full disk or a signal mid-write: leave nothing behind
        if os.path.exists(temp):
            os.unlink(temp)
        raise
    return temp
